"""Reference answers to the student part of `cnn_techniques`: one notebook cell per `# %% cell:`
marker, as `solutions/notebook_builder.py` says; the imports above the first marker are the
set-up cell's.
"""

import copy

import matplotlib.pyplot as plt
import torch
from sklearn.manifold import TSNE
from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader
from torchvision import transforms

# %% cell: transforms


def make_transforms(mean, std, augment=False):
    """(train_transform, test_transform) for the 28x28 grey PIL images of torchvision's
    MNIST-style datasets.

    Both transforms end with `ToTensor()` and `Normalize(mean, std)`, giving (1, 28, 28) float
    tensors. With `augment=True` the training transform also flips the image left-right with
    probability 0.5 (`RandomHorizontalFlip`) and cuts a random 28x28 window out of the image
    padded by 2 pixels on every side (`RandomCrop(28, padding=2)`): in either order, on the
    image (black padding) or on the normalised tensor (padding 0, the mean); other random
    augmentations may follow these two. The test transform has no randomness, whatever
    `augment` is; with `augment=False` both transforms do the same.
    """
    ### BEGIN SOLUTION
    to_tensor = [transforms.ToTensor(), transforms.Normalize(mean, std)]
    augmentations = []
    if augment:
        augmentations = [
            transforms.RandomHorizontalFlip(p=0.5),
            transforms.RandomCrop(28, padding=2),
        ]
    return transforms.Compose(augmentations + to_tensor), transforms.Compose(to_tensor)
    ### END SOLUTION


# %% cell: data


def make_loaders(dataset_class, root, train_transform, test_transform, batch_size=64):
    """(train_loader, test_loader) over torchvision's `dataset_class` (`datasets.FashionMNIST`
    or `datasets.MNIST`) stored under `root`, downloaded there when missing.

    The training loader serves the training split through `train_transform` in batches of
    `batch_size`, shuffled anew every epoch; the test loader serves the test split through
    `test_transform` in its file order (not shuffled), in batches of 1,000. Each batch is
    (images (B, 1, 28, 28) float, labels (B,) int64). `loader.dataset` is the dataset object.
    """
    ### BEGIN SOLUTION
    train_set = dataset_class(root, train=True, transform=train_transform, download=True)
    test_set = dataset_class(root, train=False, transform=test_transform, download=True)
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, num_workers=2)
    test_loader = DataLoader(test_set, batch_size=1000, shuffle=False)
    return train_loader, test_loader
    ### END SOLUTION


# %% cell: samples


def show_samples(dataset):
    """A matplotlib figure of the first image of every class of `dataset`, each titled with
    its class name ("T-shirt/top", "Trouser", ...).

    `dataset` is a torchvision MNIST-style dataset: `dataset.data` holds the images as uint8
    (N, 28, 28), `dataset.targets` the labels (N,), `dataset.classes` the class names.
    """
    ### BEGIN SOLUTION
    fig, axes = plt.subplots(2, 5, figsize=(10, 5.2))
    for label, ax in enumerate(axes.flat):
        index = int((dataset.targets == label).nonzero()[0])  # first image of this class
        ax.imshow(dataset.data[index].numpy(), cmap="gray")
        ax.set_title(dataset.classes[label])
        ax.axis("off")
    fig.tight_layout()
    return fig
    ### END SOLUTION


def show_augmentations(image, draws=5):
    """A figure with one row per training augmentation of `make_transforms` (the flip, the crop
    of the padded image, both): `image` (a PIL image) as it is, then `draws` random results."""
    crop = transforms.RandomCrop(28, padding=2)
    augmentations = {
        "horizontal flip": transforms.RandomHorizontalFlip(p=1.0),
        "random crop, padding 2": crop,
        "flip (p = 0.5), crop": transforms.Compose([transforms.RandomHorizontalFlip(), crop]),
    }
    fig, axes = plt.subplots(
        len(augmentations), draws + 1, figsize=(1.7 * (draws + 1), 2 * len(augmentations))
    )
    for row, (name, augment) in zip(axes, augmentations.items(), strict=True):
        row[0].imshow(image, cmap="gray")
        row[0].set_title("original", fontsize=9)
        for ax in row[1:]:
            ax.imshow(augment(image), cmap="gray")
            ax.set_title(name, fontsize=9)
        for ax in row:
            ax.axis("off")
    fig.tight_layout()
    return fig


# %% cell: net


class Net(nn.Module):
    """The CNN of pytorch/examples' MNIST script on (N, 1, 28, 28) images:

    1. conv1: 3x3 convolution, 1 -> 32 channels, stride 1, no padding, then ReLU;
    2. conv2: 3x3 convolution, 32 -> 64 channels, stride 1, no padding, then ReLU;
    3. 2x2 max pooling (N, 64, 12, 12), then dropout with probability 0.25 (`nn.Dropout`,
       which drops single numbers; not `nn.Dropout2d`, which older versions of the script used);
    4. flatten to (N, 9216);
    5. fc1: fully connected 9,216 -> 128, then ReLU and dropout with probability 0.5;
    6. fc2: fully connected 128 -> 10: raw class scores (logits), (N, 10). No softmax:
       `F.cross_entropy` applies it.
    """

    def __init__(self):
        super().__init__()
        ### BEGIN SOLUTION
        self.conv1 = nn.Conv2d(1, 32, kernel_size=3, stride=1)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, stride=1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        x = F.relu(self.conv1(x))  # (N, 32, 26, 26)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # (N, 64, 12, 12)
        x = torch.flatten(self.dropout1(x), 1)  # (N, 9216)
        x = self.dropout2(F.relu(self.fc1(x)))  # (N, 128)
        return self.fc2(x)  # (N, 10) logits
        ### END SOLUTION


# %% cell: parameters


def parameter_counts(model):
    """{layer name: number of parameters} for every direct submodule of `model` that has
    parameters (weights and biases both count), in the order they were defined, and "total":
    the parameters of the whole model. For `Net`: "conv1", "conv2", "fc1", "fc2", "total".
    Entries for layers without parameters (0) are accepted too. Computed from the model,
    never typed."""
    ### BEGIN SOLUTION
    counts = {}
    for name, layer in model.named_children():
        n = sum(p.numel() for p in layer.parameters())
        if n:
            counts[name] = n
    counts["total"] = sum(p.numel() for p in model.parameters())
    return counts
    ### END SOLUTION


# %% cell: loops


def train_epoch(model, loader, optimizer, device):
    """Train `model` for one pass over `loader`; return (mean loss, accuracy) of that pass.

    Moves the model and every batch to `device`, puts the model in training mode, and for each
    batch: `optimizer.zero_grad()`, cross-entropy of the logits, `backward()`, `step()`. The mean
    loss is per image (the sum of loss.item() * batch size, divided by the number of images);
    the accuracy is the fraction of images predicted right as the batches were trained (before
    each step). Both are Python floats.
    """
    ### BEGIN SOLUTION
    model.to(device)
    model.train()
    total_loss, correct, count = 0.0, 0, 0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        logits = model(images)
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(labels)
        correct += (logits.argmax(dim=1) == labels).sum().item()
        count += len(labels)
    return total_loss / count, correct / count
    ### END SOLUTION


def evaluate(model, loader, device):
    """(mean loss, accuracy) of `model` over `loader`, in evaluation mode, without gradients.

    Moves the model and every batch to `device`. The mean loss is the cross-entropy per image;
    the accuracy is correct predictions over all images (not a mean of per-batch accuracies:
    the last batch may be smaller). Both are Python floats.
    """
    ### BEGIN SOLUTION
    model.to(device)
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            logits = model(images)
            total_loss += F.cross_entropy(logits, labels, reduction="sum").item()
            correct += (logits.argmax(dim=1) == labels).sum().item()
            count += len(labels)
    return total_loss / count, correct / count
    ### END SOLUTION


# %% cell: fit


def fit(model, optimizer, train_loader, test_loader, epochs, device, scheduler=None):
    """Train `model` for `epochs` epochs, evaluating on `test_loader` after each; keep the best.

    Every epoch: `train_epoch`, then `evaluate` on the test loader, then `scheduler.step()`
    when a scheduler is given. Returns a dict of per-epoch lists, one value per epoch:
    "train_loss", "train_accuracy", "test_loss", "test_accuracy"; and "best_epoch" (1 for the
    first epoch) and "best_accuracy": the epoch with the highest test accuracy (the earliest
    one on a tie) and that accuracy. When `fit` returns, `model` holds the weights it had at
    the end of the best epoch, not those of the last one.
    """
    ### BEGIN SOLUTION
    history = {"train_loss": [], "train_accuracy": [], "test_loss": [], "test_accuracy": []}
    best_accuracy, best_epoch, best_state = -1.0, 0, None
    for epoch in range(1, epochs + 1):
        train_loss, train_accuracy = train_epoch(model, train_loader, optimizer, device)
        test_loss, test_accuracy = evaluate(model, test_loader, device)
        history["train_loss"].append(train_loss)
        history["train_accuracy"].append(train_accuracy)
        history["test_loss"].append(test_loss)
        history["test_accuracy"].append(test_accuracy)
        if test_accuracy > best_accuracy:
            best_accuracy, best_epoch = test_accuracy, epoch
            best_state = copy.deepcopy(model.state_dict())  # a copy: training changes it
        if scheduler is not None:
            scheduler.step()
        print(
            f"epoch {epoch}/{epochs}: train loss {train_loss:.4f}, train accuracy "
            f"{train_accuracy:.4f}, test loss {test_loss:.4f}, test accuracy {test_accuracy:.4f}",
            flush=True,
        )
    model.load_state_dict(best_state)
    history["best_epoch"], history["best_accuracy"] = best_epoch, best_accuracy
    return history
    ### END SOLUTION


# %% cell: curves


def plot_learning_curves(histories):
    """(training figure, test figure) of the runs in `histories` ({run name: the dict `fit`
    returned}). Each figure has two panels over the epochs (1, 2, ...): the mean loss and the
    accuracy, one line per run with its name in the legend."""
    ### BEGIN SOLUTION
    figures = []
    for split in ("train", "test"):
        fig, (ax_loss, ax_accuracy) = plt.subplots(1, 2, figsize=(11, 4))
        for name, history in histories.items():
            epochs = range(1, len(history[f"{split}_loss"]) + 1)
            ax_loss.plot(epochs, history[f"{split}_loss"], marker="o", label=name)
            ax_accuracy.plot(epochs, history[f"{split}_accuracy"], marker="o", label=name)
        word = "training" if split == "train" else "test"
        ax_loss.set(xlabel="epoch", ylabel=f"{word} loss (cross-entropy)")
        ax_accuracy.set(xlabel="epoch", ylabel=f"{word} accuracy")
        for ax in (ax_loss, ax_accuracy):
            ax.set_xticks(list(epochs))
            ax.legend()
            ax.grid(alpha=0.3)
        fig.suptitle(f"Learning curves on the {word} set")
        fig.tight_layout()
        figures.append(fig)
    return tuple(figures)
    ### END SOLUTION


# %% cell: batchnorm


class BatchNormNet(nn.Module):
    """`Net` with batch normalisation after conv1 and conv2 (`nn.BatchNorm2d` of 32 and 64
    channels) and after fc1 (`nn.BatchNorm1d` of 128 features), each before its ReLU;
    everything else (layer names, the biases of conv1, conv2 and fc1, dropout, pooling,
    logits) as in `Net`."""

    def __init__(self):
        super().__init__()
        ### BEGIN SOLUTION
        self.conv1 = nn.Conv2d(1, 32, kernel_size=3, stride=1)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, stride=1)
        self.bn2 = nn.BatchNorm2d(64)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.bn3 = nn.BatchNorm1d(128)
        self.fc2 = nn.Linear(128, 10)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        x = F.relu(self.bn1(self.conv1(x)))  # (N, 32, 26, 26)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)  # (N, 64, 12, 12)
        x = torch.flatten(self.dropout1(x), 1)  # (N, 9216)
        x = self.dropout2(F.relu(self.bn3(self.fc1(x))))  # (N, 128)
        return self.fc2(x)  # (N, 10) logits
        ### END SOLUTION


# %% cell: finetune


def finetuning_setup(mnist_state, lr):
    """(model, optimizer) for fine-tuning on Fashion-MNIST from a `Net` trained on MNIST.

    `mnist_state` is the state dict of that `Net` (the weights of its best epoch). The model is
    a new `Net` holding exactly these weights, with `requires_grad` switched off for every
    parameter except the weight and bias of the last layer, fc2. The optimizer is
    `torch.optim.Adadelta` with learning rate `lr` over exactly the two trainable tensors
    (another torch.optim optimiser is accepted, as long as it holds only those two).
    """
    ### BEGIN SOLUTION
    model = Net()
    model.load_state_dict(mnist_state)
    for parameter in model.parameters():
        parameter.requires_grad = False
    for parameter in model.fc2.parameters():
        parameter.requires_grad = True
    trainable = [p for p in model.parameters() if p.requires_grad]
    return model, torch.optim.Adadelta(trainable, lr=lr)
    ### END SOLUTION


# %% cell: tsne


def fc1_features(model, loader, device):
    """(features, labels) of every image of `loader`, in the loader's order: features is the
    (N, 128) output of `model.fc1` (before its ReLU; after the ReLU is accepted too) and labels
    the (N,) int64 labels, both on the CPU. The model runs in evaluation mode without
    gradients; a forward hook on `model.fc1` is one way to read its output."""
    ### BEGIN SOLUTION
    model.to(device)
    model.eval()
    outputs = []
    hook = model.fc1.register_forward_hook(lambda module, inputs, output: outputs.append(output))
    labels = []
    try:
        with torch.no_grad():
            for images, batch_labels in loader:
                model(images.to(device))
                labels.append(batch_labels)
    finally:
        hook.remove()
    return torch.cat(outputs).cpu(), torch.cat(labels).cpu()
    ### END SOLUTION


def tsne_points(features, seed=0):
    """(N, 2) numpy array: scikit-learn's t-SNE of `features` ((N, D) tensor) in two dimensions
    (PCA initialisation, `random_state=seed`)."""
    ### BEGIN SOLUTION
    tsne = TSNE(n_components=2, init="pca", learning_rate="auto", random_state=seed)
    return tsne.fit_transform(features.numpy())
    ### END SOLUTION


def plot_tsne(points, labels, class_names):
    """A scatter plot of `points` ((N, 2)), one colour per class, with a legend of the
    `class_names` (labels (N,) index into them)."""
    ### BEGIN SOLUTION
    fig, ax = plt.subplots(figsize=(8.5, 7))
    for label, name in enumerate(class_names):
        chosen = labels.numpy() == label
        ax.scatter(points[chosen, 0], points[chosen, 1], s=3, color=plt.cm.tab10(label))
        ax.scatter([], [], s=30, color=plt.cm.tab10(label), label=name)  # legend marker
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set(xlabel="t-SNE dimension 1", ylabel="t-SNE dimension 2")
    fig.tight_layout()
    return fig
    ### END SOLUTION


# %% cell: dream


def activation_maximisation(model, target, mean, std, steps=200, lr=0.05, decay=0.05, device="cpu"):
    """An image that makes `model` score class `target` highly: gradient ascent on the input.

    Starts from an empty image: every pixel 0 (black) in the [0, 1] pixel scale, so the first
    input the model sees is (0 - mean) / std everywhere (starting from zeros in the model's
    input space, the mean grey, is accepted too). The model runs in evaluation mode; its weights
    do not change. Each of the `steps` steps moves the pixels along the gradient of
    logit[target] - decay * (sum of squared pixels), so that the logit of `target` (the model's
    output before any softmax) rises (ascent) while pixels the class does not need stay dark;
    pixels are kept in [0, 1]. Returns (image, scores): the final image, a (1, 1, 28, 28)
    tensor in [0, 1] on the CPU, and `steps` + 1 floats, the target logit before each step and
    after the last.
    """
    ### BEGIN SOLUTION
    model.to(device)
    model.eval()
    image = torch.zeros(1, 1, 28, 28, device=device, requires_grad=True)
    # Adam on the negative objective is gradient ascent on it, with a per-pixel step size.
    optimizer = torch.optim.Adam([image], lr=lr)
    scores = []
    for _ in range(steps):
        score = model((image - mean) / std)[0, target]
        scores.append(score.item())
        objective = score - decay * image.pow(2).sum()
        # The gradient with respect to the image only: the model's weights get none.
        (gradient,) = torch.autograd.grad(objective, image)
        image.grad = -gradient
        optimizer.step()
        with torch.no_grad():
            image.clamp_(0.0, 1.0)
    with torch.no_grad():
        scores.append(model((image - mean) / std)[0, target].item())
    return image.detach().cpu(), scores
    ### END SOLUTION


def show_images(images, titles):
    """A figure of (1, 1, 28, 28) or (1, 28, 28) `images` side by side, titled by `titles`."""
    fig, axes = plt.subplots(1, len(images), figsize=(2.1 * len(images), 2.6))
    for ax, image, title in zip(axes, images, titles, strict=True):
        ax.imshow(image.squeeze().numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return fig


# %% cell: confusion


def confusion(model, loader, device):
    """The (10, 10) confusion matrix (numpy, int) of `model` over `loader`: entry [i, j]
    counts images of true class i predicted as class j, so row i sums to the number of images
    of class i. (10, 10) even when a class never occurs in the loader or the predictions.
    Evaluation mode, no gradients; computed with scikit-learn's `confusion_matrix`."""
    ### BEGIN SOLUTION
    model.to(device)
    model.eval()
    truth, predicted = [], []
    with torch.no_grad():
        for images, labels in loader:
            predicted.append(model(images.to(device)).argmax(dim=1).cpu())
            truth.append(labels.cpu())
    return confusion_matrix(torch.cat(truth), torch.cat(predicted), labels=list(range(10)))
    ### END SOLUTION


def plot_confusion(matrix, class_names):
    """A figure of `matrix` (rows: true class, columns: predicted class) with class names."""
    fig, ax = plt.subplots(figsize=(8, 7))
    ConfusionMatrixDisplay(matrix, display_labels=class_names).plot(
        ax=ax, xticks_rotation=45, colorbar=False, values_format="d"
    )
    ax.set(xlabel="predicted class", ylabel="true class")
    fig.tight_layout()
    return fig
