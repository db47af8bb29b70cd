"""Reference answers to the student part of `res_dense_nets`, one notebook cell per marker.

Every `# %% cell: <grade_id>` line starts the code of one cell of the source notebook
(solutions/notebook_builder.py); `### BEGIN/END SOLUTION` regions become
`raise NotImplementedError()` in the student copy. The imports above the first marker are the
notebook's set-up cell.
"""

import torch
from torch import nn
from torch.nn import functional as F

# %% cell: resblock


class ResBlock(nn.Module):
    """Two fully connected layers with an identity skip: y = relu(x + fc2(relu(fc1(x)))).

    fc1 maps `in_features` to `hidden_features`; fc2 maps back to `in_features` so that the
    input can be added. Input and output: (N, in_features).
    """

    def __init__(self, in_features, hidden_features):
        super().__init__()
        ### BEGIN SOLUTION
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.fc2 = nn.Linear(hidden_features, in_features)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        return F.relu(x + self.fc2(F.relu(self.fc1(x))))
        ### END SOLUTION


# %% cell: resmlp


class ResMLP(nn.Module):
    """(N, 1, 28, 28) -> flatten -> fc 784->256 -> ReLU -> 2 x ResBlock(256, 128) -> fc 256->10."""

    def __init__(self):
        super().__init__()
        ### BEGIN SOLUTION
        self.flatten = nn.Flatten()
        self.stem = nn.Linear(28 * 28, 256)
        self.blocks = nn.Sequential(ResBlock(256, 128), ResBlock(256, 128))
        self.head = nn.Linear(256, 10)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        x = F.relu(self.stem(self.flatten(x)))  # (N, 256)
        return self.head(self.blocks(x))  # (N, 10) logits
        ### END SOLUTION


# %% cell: denseblock


class DenseBlock(nn.Module):
    """`num_layers` layers of BN -> ReLU -> 3x3 conv, each adding `growth_rate` channels.

    Layer l sees the concatenation of the block input and the outputs of layers 0..l-1, that is
    in_channels + l * growth_rate channels. Input (N, C, H, W) -> output
    (N, C + num_layers * growth_rate, H, W): padding 1 keeps the spatial size.
    """

    def __init__(self, in_channels, num_layers, growth_rate):
        super().__init__()
        ### BEGIN SOLUTION
        self.layers = nn.ModuleList(
            nn.Sequential(
                nn.BatchNorm2d(in_channels + i * growth_rate),
                nn.ReLU(),
                nn.Conv2d(in_channels + i * growth_rate, growth_rate, kernel_size=3, padding=1),
            )
            for i in range(num_layers)
        )
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
        return torch.cat(features, dim=1)
        ### END SOLUTION


# %% cell: transition


class Transition(nn.Module):
    """BN -> 1x1 conv (in_channels -> out_channels) -> 2x2 average pool, stride 2.

    (N, in_channels, H, W) -> (N, out_channels, H // 2, W // 2).
    """

    def __init__(self, in_channels, out_channels):
        super().__init__()
        ### BEGIN SOLUTION
        self.norm = nn.BatchNorm2d(in_channels)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        return self.pool(self.conv(self.norm(x)))
        ### END SOLUTION


# %% cell: densenet


class DenseNet(nn.Module):
    """The sheet's DenseNet for (N, 1, 28, 28) inputs, returning (N, 10) logits.

    3x3 conv 1->4 (28x28) -> 2x2 avg pool (14x14) -> DenseBlock(4, 3 layers) -> Transition to 4
    channels (7x7) -> DenseBlock(4, 3 layers) -> global average pool -> fc (4 + 3k) -> 10.
    """

    def __init__(self, growth_rate=12):
        super().__init__()
        ### BEGIN SOLUTION
        block_out = 4 + 3 * growth_rate
        self.stem = nn.Sequential(
            nn.Conv2d(1, 4, kernel_size=3, padding=1),
            nn.AvgPool2d(kernel_size=2, stride=2),
        )
        self.block1 = DenseBlock(4, 3, growth_rate)
        self.transition = Transition(block_out, 4)
        self.block2 = DenseBlock(4, 3, growth_rate)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(block_out, 10)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        x = self.block2(self.transition(self.block1(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1))
        ### END SOLUTION


# %% cell: loops


def train_epoch(model, loader, optimizer, device):
    """Train `model` for one pass over `loader` on `device`; return the mean cross-entropy loss.

    Moves the model and every batch to `device` and puts the model in training mode first.
    """
    ### BEGIN SOLUTION
    model.to(device)
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    total, count = 0.0, 0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(labels)
        count += len(labels)
    return total / count
    ### END SOLUTION


def evaluate(model, loader, device):
    """Accuracy of `model` over `loader` (correct / total), in eval mode, without gradients."""
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


# %% cell: answers


def shape_answers(growth_rate=12):
    """Answer the sheet's shape questions by running a DenseNet and recording what goes in.

    Returns a dict of plain numbers: spatial sizes as [H, W], channel counts as ints.
    """
    ### BEGIN SOLUTION
    model = DenseNet(growth_rate).eval()
    seen = {}

    def record(name):
        def hook(module, inputs, output):
            seen[name] = (tuple(inputs[0].shape), tuple(output.shape))

        return hook

    model.block1.register_forward_hook(record("block1"))
    model.block2.register_forward_hook(record("block2"))
    model.fc.register_forward_hook(record("fc"))
    with torch.no_grad():
        model(torch.zeros(1, 1, 28, 28))
    (_, c_in, h1, w1), (_, c_out, _, _) = seen["block1"]
    (_, _, h2, w2), _ = seen["block2"]
    return {
        "block1_spatial": [h1, w1],
        "block1_in_channels": c_in,
        "block1_out_channels": c_out,
        "block2_spatial": [h2, w2],
        "fc_in_features": seen["fc"][0][1],
    }
    ### END SOLUTION
