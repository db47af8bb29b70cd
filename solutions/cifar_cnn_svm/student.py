"""Reference answers to the student part of `cifar_cnn_svm`: one notebook cell per `# %% cell:`
marker, as `solutions/notebook_builder.py` says; the imports above the first marker are the
set-up cell's. `plot_boundary` is a provided cell: the reference figures draw with it too.
"""

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.svm import SVC
from torch import nn
from torch.nn import functional as F
from torchvision import transforms

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)

# %% cell: transforms


def make_transforms():
    """(train_transform, test_transform): each takes a PIL image and returns a (3, 32, 32)
    tensor, transforms.ToTensor() then transforms.Normalize(MEAN, STD). The training one also
    augments, as the sheet does, with transforms.RandomHorizontalFlip() and
    transforms.RandomCrop(32, padding=4): in either order, on the image or on the normalised
    tensor (its padding is then the mean colour, not black). The test one is deterministic."""
    ### BEGIN SOLUTION
    train_transform = transforms.Compose(
        [
            transforms.RandomHorizontalFlip(),
            transforms.RandomCrop(32, padding=4),
            transforms.ToTensor(),
            transforms.Normalize(MEAN, STD),
        ]
    )
    # No random flip or crop here: a test image must give the same input every time.
    test_transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    return train_transform, test_transform
    ### END SOLUTION


train_transform, test_transform = make_transforms()

# %% cell: data_answers


def data_answers(train_set, test_set):
    """A dict: "size_ratio", how many times larger train_set is than test_set (a number:
    the number of training images divided by the number of test images, not rounded), and
    "first_five", the class names (from train_set.classes) of the first five training images,
    in order."""
    ### BEGIN SOLUTION
    return {
        "size_ratio": len(train_set) / len(test_set),
        "first_five": [train_set.classes[train_set[i][1]] for i in range(5)],
    }
    ### END SOLUTION


# %% cell: dense


class Dense(nn.Module):
    """The sheet's fully connected network: (N, 3, 32, 32) -> flatten to (N, 3072) -> linear
    layers 3072 -> 256 -> 64 -> 10, ReLU after the first two -> log_softmax over the classes
    (dim=1): log-probabilities, for nn.NLLLoss."""

    def __init__(self):
        super().__init__()
        ### BEGIN SOLUTION
        self.fc1 = nn.Linear(3 * 32 * 32, 256)
        self.fc2 = nn.Linear(256, 64)
        self.fc3 = nn.Linear(64, 10)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        x = x.reshape(x.shape[0], -1)  # (N, 3072)
        x = F.relu(self.fc2(F.relu(self.fc1(x))))
        return F.log_softmax(self.fc3(x), dim=1)  # (N, 10) log-probabilities
        ### END SOLUTION


# %% cell: cnn


class CNN(nn.Module):
    """(N, 3, 32, 32) -> nn.Conv2d(3, 32, kernel_size=5, padding=1), SiLU, nn.MaxPool2d(2, 2)
    -> nn.Conv2d(32, 64, kernel_size=3, padding=1), SiLU, nn.MaxPool2d(2, 2) -> flatten ->
    linear to 64 units, ReLU -> linear to 10 raw scores (logits): no softmax, no log-softmax."""

    def __init__(self):
        super().__init__()
        ### BEGIN SOLUTION
        self.conv1 = nn.Conv2d(3, 32, kernel_size=5, padding=1)  # 32x32 -> 30x30
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)  # 15x15 -> 15x15
        self.pool = nn.MaxPool2d(2, 2)
        self.fc1 = nn.Linear(64 * 7 * 7, 64)
        self.fc2 = nn.Linear(64, 10)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        x = self.pool(F.silu(self.conv1(x)))  # (N, 32, 15, 15)
        x = self.pool(F.silu(self.conv2(x)))  # (N, 64, 7, 7)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))  # (N, 10)
        ### END SOLUTION


# %% cell: loops


def train_epoch(model, loader, optimizer, device, criterion=None):
    """One pass over `loader` in training mode, the model and every batch moved to `device`,
    optimizer.zero_grad() before every loss.backward(). Returns the mean loss per image, a float:
    the sum of loss.item() * batch size over the batches, divided by the number of images.

    `criterion` is the loss (None: nn.NLLLoss(), for models that return log-probabilities).
    """
    ### BEGIN SOLUTION
    criterion = criterion or nn.NLLLoss()
    model.to(device)
    model.train()
    total, count = 0.0, 0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(labels)
        count += len(labels)
    return total / count
    ### END SOLUTION


def evaluate(model, loader, device):
    """Accuracy over `loader` (correct / total, a fraction) of the argmax over the classes, in
    eval mode under torch.no_grad(), the model and every batch moved to `device`. `loader` is
    any iterable of (images, labels) batches: a DataLoader, or the list of batches part 2 gives
    (which has no `.dataset`)."""
    ### BEGIN SOLUTION
    model.to(device)
    model.eval()
    correct, count = 0, 0
    with torch.no_grad():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            correct += (model(images).argmax(dim=1) == labels).sum().item()
            count += len(labels)
    return correct / count
    ### END SOLUTION


# %% cell: svc


def flatten_images(dataset, n):
    """(X, y): the first `n` items of `dataset` as it hands them out (`dataset[i]` is the
    transformed image and its label), each image flattened: X a float numpy array (n, 3072), y
    an int numpy array (n,)."""
    ### BEGIN SOLUTION
    pairs = [dataset[i] for i in range(n)]  # (image (3, 32, 32), label)
    X = torch.stack([image for image, _ in pairs]).reshape(n, -1).numpy()
    return X, np.array([int(label) for _, label in pairs])
    ### END SOLUTION


def fit_svc(dataset, n=10_000):
    """An SVC(kernel="rbf") with scikit-learn's defaults, fitted on flatten_images(dataset, n)
    and returned."""
    ### BEGIN SOLUTION
    return SVC(kernel="rbf").fit(*flatten_images(dataset, n))
    ### END SOLUTION


# %% cell: part2


def split_data(X, y):
    """X_train, X_test, y_train, y_test of `train_test_split`: half of the points for testing,
    `random_state` 42 and no other option (no `stratify`), so that everyone's split is the same."""
    ### BEGIN SOLUTION
    return train_test_split(X, y, test_size=0.5, random_state=42)
    ### END SOLUTION


def fit_logistic(X_train, y_train):
    """A LogisticRegression with scikit-learn's defaults, fitted on the training half."""
    ### BEGIN SOLUTION
    return LogisticRegression().fit(X_train, y_train)
    ### END SOLUTION


# %% cell: plot_boundary


def plot_boundary(predict, X, y, ax, title):
    """Colour the plane by `predict` (an (M, 2) array -> M labels) and scatter all of X."""
    pad = 0.3
    xs = np.linspace(X[:, 0].min() - pad, X[:, 0].max() + pad, 300)
    ys = np.linspace(X[:, 1].min() - pad, X[:, 1].max() + pad, 300)
    grid_x, grid_y = np.meshgrid(xs, ys)
    grid = np.column_stack([grid_x.ravel(), grid_y.ravel()]).astype(np.float32)
    ax.contourf(grid_x, grid_y, predict(grid).reshape(grid_x.shape), alpha=0.3, cmap="coolwarm")
    ax.scatter(X[:, 0], X[:, 1], c=y, s=8, cmap="coolwarm", edgecolors="k", linewidths=0.2)
    ax.set(title=title, xlabel="$x_1$", ylabel="$x_2$")


# %% cell: deep


class DeepClassifier(nn.Module):
    """The sheet's classifier of 2-D points: first (2 -> hidden_dim), n_hidden - 1 layers
    hidden_dim -> hidden_dim, last (hidden_dim -> 2); leaky ReLU between, log-softmax out."""

    def __init__(self, n_hidden: int = 1, hidden_dim: int = 32):
        super().__init__()
        torch.manual_seed(42)
        self.n_hidden = n_hidden
        self.first = nn.Linear(2, hidden_dim)
        ### BEGIN SOLUTION
        # nn.ModuleList registers the layers: a plain list hides them from .parameters()
        # (so the optimiser never trains them) and from state_dict().
        self.between = nn.ModuleList(
            [nn.Linear(hidden_dim, hidden_dim) for _ in range(self.n_hidden - 1)]
        )
        ### END SOLUTION
        self.last = nn.Linear(hidden_dim, 2)

    def forward(self, x):
        x = F.leaky_relu(self.first(x))
        for i in range(self.n_hidden - 1):
            x = F.leaky_relu(self.between[i](x))
        return F.log_softmax(self.last(x), dim=1)


# %% cell: width


def smallest_width(accuracies, target=0.99):
    """The smallest width (a key of `accuracies`, width -> test accuracy) whose accuracy is at
    least `target`; None when none is."""
    ### BEGIN SOLUTION
    reaching = [width for width, accuracy in accuracies.items() if accuracy >= target]
    return min(reaching) if reaching else None
    ### END SOLUTION
