"""Reference answers to the student part of `fnn_mnist`: one notebook cell per `# %% cell:`
marker, as `solutions/notebook_builder.py` says; the imports above the first marker are the
set-up cell's. The sheet's four parts: [N] the network, [DL] the data loader, [NT] the network
trainer and [NU] the network user.
"""

import math

import matplotlib.pyplot as plt
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

# %% cell: dense_layer


def dense_layer(in_features, out_features, activation=None, batch_norm=False):
    """One fully connected layer as an nn.Sequential, input (N, in_features), output
    (N, out_features). Its layers, in this order and nothing else:

    1. nn.Linear(in_features, out_features), without a bias (bias=False) when `batch_norm`;
    2. only when `batch_norm`: nn.BatchNorm1d(out_features);
    3. only when `activation` is not None: `activation()`, an instance of the class given
       (such as nn.ReLU or nn.Tanh).

    A plain list of these layers is accepted too, if your networks wrap it in nn.Sequential.
    """
    ### BEGIN SOLUTION
    # Batch norm subtracts each feature's mean, so a bias added before it would cancel out.
    layers = [nn.Linear(in_features, out_features, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(out_features))
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)
    ### END SOLUTION


# %% cell: fnn


class FNN(nn.Module):
    """Two hidden layers made by dense_layer: input_size -> hidden_size -> hidden_size, each
    with `activation` (and batch norm when `batch_norm`), then an output layer hidden_size ->
    output_size with neither activation nor batch norm.

    forward takes a batch of vectors (N, input_size) or of images (N, 1, 28, 28), which it
    flattens first, and returns (N, output_size) raw scores (logits, no softmax).
    """

    def __init__(
        self, input_size=784, hidden_size=256, output_size=10, activation=nn.ReLU, batch_norm=False
    ):
        super().__init__()
        ### BEGIN SOLUTION
        self.layers = nn.Sequential(
            dense_layer(input_size, hidden_size, activation, batch_norm),
            dense_layer(hidden_size, hidden_size, activation, batch_norm),
            dense_layer(hidden_size, output_size),
        )
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        return self.layers(torch.flatten(x, start_dim=1))  # (N, ...) -> (N, input_size)
        ### END SOLUTION


# %% cell: deep_fnn


class DeepFNN(nn.Module):
    """Any number of hidden layers: input_size -> hidden_sizes[0] -> ... -> output_size.

    `hidden_sizes` is a list or tuple of any length, one hidden layer made by dense_layer per
    entry (with `activation`, and batch norm when `batch_norm`), then the output layer without
    activation: DeepFNN(784, [], 10) is a single linear layer 784 -> 10, and
    DeepFNN(784, (256, 256), 10) computes what FNN(784, 256, 10) does. forward as FNN's.
    """

    def __init__(
        self,
        input_size=784,
        hidden_sizes=(256, 256),
        output_size=10,
        activation=nn.ReLU,
        batch_norm=False,
    ):
        super().__init__()
        ### BEGIN SOLUTION
        widths = [input_size, *hidden_sizes]
        hidden = [
            dense_layer(n_in, n_out, activation, batch_norm)
            for n_in, n_out in zip(widths[:-1], widths[1:], strict=True)
        ]
        self.layers = nn.Sequential(*hidden, dense_layer(widths[-1], output_size))
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        return self.layers(torch.flatten(x, start_dim=1))
        ### END SOLUTION


# %% cell: init_weights


def init_weights(model):
    """Re-initialise, in place, every layer of `model` that has weights (model itself
    included, so init_weights(nn.Linear(3, 2)) works too), whatever the network is:

    * nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d: the weight drawn afresh by
      nn.init.kaiming_uniform_(weight, nonlinearity="relu"); the bias, if there is one, drawn
      uniformly from [-1/sqrt(fan_in), 1/sqrt(fan_in)], fan_in = weight[0].numel() (the inputs
      of one unit), or set to zeros (nn.init.zeros_): both are accepted;
    * nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d: back to scale 1 and shift 0, by
      module.reset_parameters() (which also resets the running mean and variance) or by
      nn.init.ones_ and nn.init.zeros_ on the scale and shift: both are accepted;
    * every other layer is left as it is.
    """
    ### BEGIN SOLUTION
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_uniform_(module.weight, nonlinearity="relu")
            if module.bias is not None:
                fan_in = module.weight[0].numel()  # inputs feeding one output unit
                bound = 1 / math.sqrt(fan_in)
                nn.init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
            module.reset_parameters()
    ### END SOLUTION


# %% cell: data_tools


def flatten(image):
    """Transform: an image tensor (1, 28, 28) -> a vector (784,), rows one after another."""
    ### BEGIN SOLUTION
    return torch.flatten(image)
    ### END SOLUTION


def mean_std(dataset):
    """(mean, std) of all pixels of all images of `dataset`, on the 0..1 scale, as two Python
    floats (population std: divide by the number of pixels). `dataset` is one of:

    1. a torchvision data set such as datasets.MNIST(...): its `.data` is a uint8 tensor
       (N, 28, 28) of values 0..255 (divide by 255);
    2. a `Subset` of one (`Subset.dataset` is the data set, `Subset.indices` the images that
       belong to it): only those images count;
    3. any other data set or list of (image, label) pairs, each image a float32 tensor
       (1, 28, 28) of values 0..1 (as transforms.ToTensor() gives them).

    It leaves `dataset` as it was: the caller uses its images afterwards.
    """
    ### BEGIN SOLUTION
    if isinstance(dataset, Subset) and hasattr(dataset.dataset, "data"):
        images = dataset.dataset.data[dataset.indices]
    elif hasattr(dataset, "data"):
        images = dataset.data
    else:
        images = torch.stack([image for image, _ in dataset])
    pixels = torch.as_tensor(images).to(torch.float32)
    if images.dtype == torch.uint8:
        pixels = pixels / 255  # 0..255 -> 0..1
    mean = pixels.mean(dtype=torch.float64)  # float64 sums: millions of pixels
    std = (pixels - mean.float()).pow(2).mean(dtype=torch.float64).sqrt()
    return mean.item(), std.item()
    ### END SOLUTION


# %% cell: loaders


def make_loaders(root, batch_size=64, validation_size=5000, seed=0, normalize=True):
    """(train_loader, val_loader, test_loader) of flattened MNIST images (784,) and labels.

    1. The training split, datasets.MNIST(root, train=True, download=True), is split in two:
       order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(seed));
       the first `validation_size` indices of `order` are the validation images, the others
       the training images (use Subset).
    2. With `normalize`: (mean, std) = mean_std of the training images only, and
       transforms.Normalize((mean,), (std,)) standardises every image.
    3. Every image, of every split, goes through transforms.Compose([transforms.ToTensor(),
       transforms.Normalize(...), flatten]) (without Normalize when not `normalize`).
    4. The training loader shuffles; the validation and test loaders do not.
    """
    ### BEGIN SOLUTION
    plain = datasets.MNIST(root, train=True, download=True, transform=transforms.ToTensor())
    if not 0 < validation_size < len(plain):
        raise ValueError(f"validation_size must be between 0 and {len(plain)}")
    order = torch.randperm(len(plain), generator=torch.Generator().manual_seed(seed)).tolist()
    train_idx, val_idx = order[validation_size:], order[:validation_size]
    steps = [transforms.ToTensor()]
    if normalize:
        mean, std = mean_std(Subset(plain, train_idx))  # training part only
        steps.append(transforms.Normalize((mean,), (std,)))
    steps.append(flatten)
    transform = transforms.Compose(steps)
    train_full = datasets.MNIST(root, train=True, download=True, transform=transform)
    test_set = datasets.MNIST(root, train=False, download=True, transform=transform)
    return (
        DataLoader(Subset(train_full, train_idx), batch_size=batch_size, shuffle=True),
        DataLoader(Subset(train_full, val_idx), batch_size=batch_size),
        DataLoader(test_set, batch_size=batch_size),
    )
    ### END SOLUTION


# %% cell: sum_correct_preds


def sum_correct_preds(outputs, targets):
    """How many rows of `outputs` (N, C) have their largest score (argmax) at `targets` (N,),
    the true labels: a count, as a Python int (not a fraction or a percentage)."""
    ### BEGIN SOLUTION
    return int((outputs.argmax(dim=1) == targets).sum().item())
    ### END SOLUTION


# %% cell: regularization


def l2_regularization(model, l2_lambda=1e-3):
    """l2_lambda times the sum of the squares of all parameters (model.parameters(): weights,
    biases, batch-norm scales and shifts): a 0-d tensor in the autograd graph."""
    ### BEGIN SOLUTION
    return l2_lambda * sum(p.pow(2).sum() for p in model.parameters())
    ### END SOLUTION


def l1_regularization(model, l1_lambda=1e-3):
    """l1_lambda times the sum of the absolute values of all parameters: a 0-d tensor in the
    autograd graph, as l2_regularization's."""
    ### BEGIN SOLUTION
    return l1_lambda * sum(p.abs().sum() for p in model.parameters())
    ### END SOLUTION


# %% cell: trainer


class NetworkTrainer:
    """The gym: trains any nn.Module on `train_loader` and validates it on `val_loader`.

    `criterion` is a loss that averages over the batch (nn.CrossEntropyLoss());
    `sum_correct_preds` counts correct predictions of a batch; `regularization`, if given, maps
    the model to a penalty (a 0-d tensor) added to every training batch's loss. __init__ keeps
    its arguments and moves the model to `device`; so must every batch go there.
    """

    def __init__(
        self,
        model,
        train_loader,
        val_loader,
        criterion,
        optimizer,
        device,
        sum_correct_preds=sum_correct_preds,
        regularization=None,
    ):
        self.model = model
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.criterion = criterion
        self.optimizer = optimizer
        self.device = device
        self.sum_correct_preds = sum_correct_preds
        self.regularization = regularization
        self.train_accuracy = None  # accuracy of the last train_epoch(), a fraction
        ### BEGIN SOLUTION
        self.model.to(device)
        ### END SOLUTION

    def train_epoch(self):
        """One pass over `train_loader` in training mode (model.train()). For every batch:
        inputs and labels to `device`, optimizer.zero_grad(), the outputs and the loss (plus
        regularization(model) when given), backward, an optimiser step.

        Returns the epoch's mean training loss per sample, with the penalty, as a float (sum
        loss.item() * batch size, divide by the number of samples); stores the accuracy of the
        same forward passes (correct / samples, by self.sum_correct_preds) in
        self.train_accuracy."""
        ### BEGIN SOLUTION
        self.model.train()
        train_loss, correct, seen = 0.0, 0, 0
        for inputs, targets in self.train_loader:
            inputs, targets = inputs.to(self.device), targets.to(self.device)
            self.optimizer.zero_grad()
            outputs = self.model(inputs)
            loss = self.criterion(outputs, targets)
            if self.regularization is not None:
                loss = loss + self.regularization(self.model)
            loss.backward()
            self.optimizer.step()
            # The criterion averages over the batch: times its size gives the batch's sum.
            train_loss += loss.item() * len(targets)
            correct += self.sum_correct_preds(outputs, targets)
            seen += len(targets)
        self.train_accuracy = correct / seen
        return train_loss / seen
        ### END SOLUTION

    def validate(self):
        """(val_loss, val_accuracy) on `val_loader`: the loss per sample with the plain
        criterion (never the penalty) and the accuracy as a fraction in 0..1. Runs in
        evaluation mode (model.eval()) under torch.no_grad(): it changes nothing."""
        ### BEGIN SOLUTION
        self.model.eval()
        val_loss, correct, seen = 0.0, 0, 0
        with torch.no_grad():
            for inputs, targets in self.val_loader:
                inputs, targets = inputs.to(self.device), targets.to(self.device)
                outputs = self.model(inputs)
                val_loss += self.criterion(outputs, targets).item() * len(targets)
                correct += self.sum_correct_preds(outputs, targets)
                seen += len(targets)
        return val_loss / seen, correct / seen
        ### END SOLUTION

    def train_network(self, epochs):
        """For each epoch, train_epoch() then validate(); returns a dict of four lists with one
        entry per epoch: "train_loss", "val_loss", "train_accuracy", "val_accuracy"."""
        ### BEGIN SOLUTION
        history = {"train_loss": [], "val_loss": [], "train_accuracy": [], "val_accuracy": []}
        for epoch in range(epochs):
            train_loss = self.train_epoch()
            val_loss, val_accuracy = self.validate()
            history["train_loss"].append(train_loss)
            history["val_loss"].append(val_loss)
            history["train_accuracy"].append(self.train_accuracy)
            history["val_accuracy"].append(val_accuracy)
            print(
                f"epoch {epoch + 1}/{epochs}: train loss {train_loss:.4f}, "
                f"val loss {val_loss:.4f}, train acc {self.train_accuracy:.4f}, "
                f"val acc {val_accuracy:.4f}"
            )
        return history
        ### END SOLUTION


# %% cell: user


class NetworkUser:
    """Saves a trained model's parameters, loads them back, predicts and shows predictions."""

    def __init__(self, model, device="cpu"):
        self.device = torch.device(device)
        self.model = model.to(self.device)

    def save(self, path):
        """Write the model's parameters, its state_dict() (not the model object), to `path`
        with torch.save."""
        ### BEGIN SOLUTION
        torch.save(self.model.state_dict(), path)
        ### END SOLUTION

    def load(self, path):
        """Read parameters saved by `save` into this user's model: torch.load(path,
        map_location=self.device, weights_only=True), then load_state_dict."""
        ### BEGIN SOLUTION
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.model.load_state_dict(state)
        ### END SOLUTION

    def predict(self, inputs):
        """Labels predicted for `inputs` (N, 784) or (N, 1, 28, 28): int64 (N,), on the CPU.

        Computed in evaluation mode, without gradients; the model is left in evaluation mode
        (putting back the mode it was in is accepted too).
        """
        ### BEGIN SOLUTION
        self.model.eval()
        with torch.no_grad():
            outputs = self.model(inputs.to(self.device))
        return outputs.argmax(dim=1).cpu()
        ### END SOLUTION

    def show_predictions(self, images, labels, n=8):
        """A figure of the first `n` images (flattened (784,) or (1, 28, 28)), each titled with
        its predicted and true label, in red where they differ and in black where they agree."""
        ### BEGIN SOLUTION
        images, labels = images[:n], labels[:n]
        predicted = self.predict(images)
        fig, axes = plt.subplots(1, len(images), figsize=(1.6 * len(images), 2.2), squeeze=False)
        for ax, image, pred, true in zip(axes[0], images, predicted, labels, strict=True):
            ax.imshow(image.reshape(28, 28).cpu().numpy(), cmap="gray")  # (784,) -> (28, 28)
            colour = "black" if int(pred) == int(true) else "red"
            ax.set_title(f"pred {int(pred)}\ntrue {int(true)}", color=colour)
            ax.axis("off")
        fig.tight_layout()
        return fig
        ### END SOLUTION


# %% cell: answers

HIDDEN_SIZE = 256  # the width the questions ask about


def answers():
    """The sheet's number questions, answered by code that reads the networks.

    image_size: [H, W] of one MNIST image; vector_length: the length of its flattened vector;
    fnn_parameters, fnn_batchnorm_parameters: trainable parameters of FNN(784, HIDDEN_SIZE, 10)
    without and with batch norm (buffers such as batch norm's running mean are not parameters);
    batchnorm_added_parameters: the parameters of the batch-norm layers of the second;
    bias_saved_parameters: how many fewer linear-layer biases the second has than the first.
    """
    ### BEGIN SOLUTION
    image = torch.zeros(1, 28, 28)  # one MNIST image: 1 channel, 28 x 28 pixels
    vector_length = torch.flatten(image).numel()  # pixels, one after another
    plain = FNN(vector_length, HIDDEN_SIZE, 10)
    with_bn = FNN(vector_length, HIDDEN_SIZE, 10, batch_norm=True)

    def count(parameters):
        return sum(p.numel() for p in parameters)

    def biases(model):  # of its linear layers
        return [m.bias for m in model.modules() if isinstance(m, nn.Linear) and m.bias is not None]

    def norms(model):  # scales and shifts of its batch-norm layers
        return [p for m in model.modules() if isinstance(m, nn.BatchNorm1d) for p in m.parameters()]

    return {
        "image_size": list(image.shape[1:]),
        "vector_length": vector_length,
        "fnn_parameters": count(plain.parameters()),
        "fnn_batchnorm_parameters": count(with_bn.parameters()),
        "batchnorm_added_parameters": count(norms(with_bn)),
        "bias_saved_parameters": count(biases(plain)) - count(biases(with_bn)),
    }
    ### END SOLUTION
