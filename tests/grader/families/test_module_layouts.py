"""Layouts of a module's parameters that the modules family must read as the reference's: the
same computation whatever the parameters are called, where they are kept, or how they are laid
out in memory."""

from __future__ import annotations

import pytest

from tests.grader.families.conftest import Harness

# Blind round 18 (cifar s11): a Dense of its own (in, out) matrices, applied as x @ W and by
# einsum, as from-scratch courses write a linear layer.
HAND_DENSE = """
class Dense(nn.Module):
    def __init__(self):
        super().__init__()
        sizes = [3072, 256, 64, 10]
        self.W = nn.ParameterList()
        self.b = nn.ParameterList()
        for n_in, n_out in zip(sizes, sizes[1:]):
            self.W.append(nn.Parameter(torch.randn(n_in, n_out) / n_in**0.5))
            self.b.append(nn.Parameter(torch.zeros(n_out)))

    def forward(self, x):
        x = x.reshape(len(x), -1)
        x = torch.relu(x @ self.W[0] + self.b[0])
        x = torch.relu(torch.einsum("ni,ih->nh", x, self.W[1]) + self.b[1])
        return torch.log_softmax(x @ self.W[2] + self.b[2], dim=1)
"""


MIXED = (
    "        return torch.log_softmax(x @ self.W[2] + self.b[2], dim=1)",
    "        return torch.log_softmax(self.out(x), dim=1)",
)


@pytest.fixture(scope="module")
def cifar() -> Harness:
    return Harness.of("cifar_cnn_svm")


@pytest.mark.parametrize(
    ("edit", "failing"),
    [
        (None, set()),
        (("torch.relu(torch.einsum", "(torch.einsum"), {"dense_behaviour"}),  # a ReLU left out
        (("sizes = [3072, 256, 64, 10]", "sizes = [3072, 256, 128, 10]"), {"dense_shape"}),
        (MIXED, set()),  # nn.Linear's last layer beside them: its weight is read as (out, in)
    ],
)
def test_is_a_dense_of_in_out_matrices_read_as_linear_layers(cifar, edit, failing):
    """Blind round 18 (cifar s11): right, it lost dense_shape ("803786 parameters, expected
    803786: ... unexpected parameters of shape 64x10, 256x64, 3072x256") and dense_behaviour
    (values were drawn per shape, so its matrices got other values than nn.Linear's weights).
    A matrix registered by hand may be kept as (in, out): the shapes are compared with it read
    transposed, and the outputs with it given the transpose of nn.Linear's value. The outputs
    still judge the computation; a torch layer's weight beside them keeps its (out, in)."""
    code = HAND_DENSE
    if edit == MIXED:
        code = code.replace("sizes = [3072, 256, 64, 10]", "sizes = [3072, 256, 64]")
        code = code.replace(
            "    def forward", "        self.out = nn.Linear(64, 10)\n\n    def forward"
        )
    if edit:
        assert code.count(edit[0]) == 1
        code = code.replace(*edit)
    results = cifar.grade(cifar.namespace(code), ["module:dense"])
    lost = {n for n, r in results.items() if r.status in ("fail", "error")}
    assert lost == failing, {n: r.message for n, r in results.items()}


# A BatchNormNet of its own: batch norm through F.batch_norm with buffers of its own (which
# fix_parameters does not reset), fc1 an (out, in) matrix of its own applied with F.linear.
HAND_BATCHNORM = """
class BatchNormNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=3, stride=1)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, stride=1)
        self.fc1_weight = nn.Parameter(torch.randn(128, 9216) / 96)
        self.fc1_bias = nn.Parameter(torch.zeros(128))
        self.fc2 = nn.Linear(128, 10)
        for name, size in (("norm1", 32), ("norm2", 64), ("norm3", 128)):
            setattr(self, f"{name}_gain", nn.Parameter(torch.ones(size)))
            setattr(self, f"{name}_shift", nn.Parameter(torch.zeros(size)))
            self.register_buffer(f"{name}_mean", torch.zeros(size))
            self.register_buffer(f"{name}_var", torch.ones(size))

    def _norm(self, x, name):
        stats = [getattr(self, f"{name}_{part}") for part in ("mean", "var", "gain", "shift")]
        return F.batch_norm(x, *stats, training=self.training, momentum=0.1, eps=1e-5)

    def forward(self, x):
        x = F.relu(self._norm(self.conv1(x), "norm1"))
        x = F.max_pool2d(F.relu(self._norm(self.conv2(x), "norm2")), 2)
        x = torch.flatten(F.dropout(x, 0.25, training=self.training), 1)
        x = F.relu(self._norm(F.linear(x, self.fc1_weight, self.fc1_bias), "norm3"))
        return self.fc2(F.dropout(x, 0.5, training=self.training))
"""


def test_does_reading_hand_matrices_transposed_leave_hand_built_batch_norm_statistics_alone():
    """Blind round 18 (cnn s04 with its own fc1 matrix): the transposed reading runs the module
    in training mode too, which moves the running statistics of a batch norm built by hand;
    they are put back, so the evaluation-mode outputs are still judged from their initial ones."""
    cnn = Harness.of("cnn_techniques")
    results = cnn.grade(cnn.namespace(HAND_BATCHNORM), ["module:batchnorm_net"])
    assert results["batchnorm_behaviour"].status == "pass", results["batchnorm_behaviour"].message
