"""The `fnn_mnist` source notebook: instructions, solution cells, tests, in order.

The sheet (004) builds a reusable code structure in four parts, each its own graded section:
[N] the network, [DL] the data loader (here), [NT] the network trainer, [NU] the network user
(`notebook_training`, with the training runs and the closing sections).
"""

from __future__ import annotations

from pathlib import Path

from grader.manifest import Manifest
from solutions.fnn_mnist import config
from solutions.fnn_mnist.notebook_training import questions, trainer_and_user
from solutions.notebook_builder import (
    Cell,
    grade_cell,
    introduction,
    markdown,
    provided,
    solution,
    student_chunks,
    visible_test,
)

STUDENT = Path(__file__).with_name("student.py")


def cells(manifest: Manifest) -> list[Cell]:
    code = student_chunks(STUDENT)
    mean, std = manifest.mean[0], manifest.std[0]
    fnn, fnn_bn = manifest.model("fnn"), manifest.model("fnn_bn")
    return [
        *introduction(
            manifest,
            """
            # Fully connected feed-forward networks on MNIST

            You will teach a fully connected feed-forward network (FNN) to read the
            hand-written digits of MNIST (28x28 grey images, ten classes), and on the way build
            a small code structure that the rest of the course reuses. It has four parts; each
            section of this notebook is marked with the part it belongs to:

            * **[N] Network**: a builder for one dense layer, the FNN made from it, an FNN of
              any depth, and a function that initialises the weights of any network;
            * **[DL] Data loader**: MNIST through torchvision, split into training and
              validation images, standardised and flattened into vectors;
            * **[NT] Network trainer**: a class that trains any `nn.Module` for some epochs and
              reports training and validation loss and accuracy; an accuracy count and L1/L2
              penalties that plug into it;
            * **[NU] Network user**: saves a trained network's parameters, loads them into a
              fresh network, predicts labels and shows predictions.
            """,
            tests="a few things and print what is wrong",
            note="A CPU works too, only slower. Read the rules of each part: the grader holds"
            " you to them.",
            measured="their accuracy on the MNIST test split, with the test images prepared by"
            " your own `test_loader`'s transform (see DL2)",
            after="""
            References: Ioffe and Szegedy, *Batch Normalization: Accelerating Deep Network
            Training by Reducing Internal Covariate Shift* (2015), arXiv:1502.03167; Kingma and
            Ba, *Adam: A Method for Stochastic Optimization* (2014), arXiv:1412.6980; Paszke et
            al., *Automatic differentiation in PyTorch* (2017); Stevens, Antiga and Viehmann,
            *Deep Learning with PyTorch* (2020), chapter 8.
            """,
        ),
        provided(
            "setup",
            """
            import math
            import os

            import matplotlib.pyplot as plt
            import torch
            from torch import nn
            from torch.nn import functional as F
            from torch.utils.data import DataLoader, Subset, TensorDataset
            from torchvision import datasets, transforms

            # Train on the GPU when there is one (Colab), else on the CPU.
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
            # Set while the notebook is graded: training cells then load your weights files.
            GRADING = bool(os.environ.get("NBGRADER_EXECUTION"))
            torch.manual_seed(0)
            print("device:", device)
            """,
        ),
        # ------------------------------------------------------------------ [N]
        markdown(
            """
            ## [N] The network

            ### N1. A dense layer

            Write `dense_layer` as its docstring says, returning the layers as one
            [`nn.Sequential`](https://pytorch.org/docs/stable/generated/torch.nn.Sequential.html).
            The last layer of a classifier gets no activation (`activation=None`): see N2.

            Why no bias before batch norm? Batch norm subtracts the mean of each feature over
            the batch (in training) or its running mean (in evaluation). A bias adds the same
            constant to every sample of a feature, so the subtraction removes it again: it
            cannot change the output, only cost parameters. Batch norm's own learnable shift
            (beta) takes over its role. Batch norm sits between the linear layer and the
            activation, as Ioffe and Szegedy proposed; putting it after the activation is a
            different network (a bonus question below asks what it changes).
            """
        ),
        solution("dense_layer", code["dense_layer"]),
        visible_test(
            "dense_layer",
            """
            def _as_module(built):  # an nn.Module, or a list of layers
                return nn.Sequential(*built) if isinstance(built, (list, tuple)) else built


            def _shapes(module):
                return sorted(tuple(p.shape) for p in module.parameters())


            _x = torch.randn(5, 20)
            _layer = _as_module(dense_layer(20, 7, nn.ReLU))
            assert _layer(_x).shape == (5, 7), f"expected (5, 7), got {tuple(_layer(_x).shape)}"
            assert _shapes(_layer) == [(7,), (7, 20)], f"parameters {_shapes(_layer)}"
            assert (_layer(_x) >= 0).all(), "with activation=nn.ReLU the outputs are >= 0"
            _plain = _as_module(dense_layer(20, 7))
            assert (_plain(_x) < 0).any(), "activation=None: no activation, outputs can be < 0"
            _bn = _as_module(dense_layer(20, 7, nn.ReLU, batch_norm=True))
            assert any(isinstance(m, nn.BatchNorm1d) for m in _bn.modules()), "no BatchNorm1d"
            assert _shapes(_bn) == [(7,), (7,), (7, 20)], (
                f"batch norm variant: parameters {_shapes(_bn)}; the linear layer has no bias"
            )
            print("dense_layer: shapes, parameters and activations look right")
            """,
        ),
        grade_cell(manifest, "test_dense_layer", "Tests of dense_layer."),
        markdown(
            f"""
            ### N2. The FNN

            Build `FNN` from `dense_layer` as its docstring says. Store the layers as
            attributes or in an `nn.Sequential` / `nn.ModuleList` (never a plain Python list,
            which PyTorch neither trains nor saves). Do not apply a softmax: the loss function
            does that (see Training and Question NT1). Our images become vectors of
            `28 * 28 = 784` pixels, rows one after another, hence `input_size=784`.

            The weights you hand in are `FNN({", ".join(map(str, fnn.args))})` in
            `{fnn.weights}` and `FNN({", ".join(map(str, fnn_bn.args))}, batch_norm=True)` in
            `{fnn_bn.weights}`.
            """
        ),
        solution("fnn", code["fnn"]),
        visible_test(
            "fnn",
            """
            _net = FNN(20, 7, 3)
            assert _net(torch.randn(4, 20)).shape == (4, 3), "FNN(20, 7, 3) should give (N, 3)"
            _out = FNN()(torch.randn(2, 1, 28, 28))
            assert _out.shape == (2, 10), f"images (2, 1, 28, 28): got {tuple(_out.shape)}"
            _count = sum(p.numel() for p in _net.parameters())
            assert _count == (20 * 7 + 7) + (7 * 7 + 7) + (7 * 3 + 3), f"{_count} parameters"
            _count_bn = sum(p.numel() for p in FNN(20, 7, 3, batch_norm=True).parameters())
            assert _count_bn == (20 * 7 + 2 * 7) + (7 * 7 + 2 * 7) + (7 * 3 + 3), (
                f"{_count_bn} parameters with batch norm: no linear bias, 2 per feature for BN"
            )
            print("FNN: output shapes and parameter counts look right")
            """,
        ),
        grade_cell(manifest, "test_fnn", "Tests of FNN."),
        *questions(
            N1="`FNN` has a `forward` method but no backward one. Why do we not need to "
            "write the backpropagation step ourselves?",
        ),
        markdown(
            """
            ### N3. An FNN of any depth

            Write `DeepFNN` as its docstring says. Register the layers (`nn.Sequential` or
            `nn.ModuleList`): a layer kept in a plain list has parameters that
            `model.parameters()` never sees.
            """
        ),
        solution("deep_fnn", code["deep_fnn"]),
        visible_test(
            "deep_fnn",
            """
            _deep = DeepFNN(20, [9, 8, 7], 3)
            assert _deep(torch.randn(4, 20)).shape == (4, 3), "DeepFNN(20, [9, 8, 7], 3): (N, 3)"
            _count = sum(p.numel() for p in _deep.parameters())
            _want = (20 * 9 + 9) + (9 * 8 + 8) + (8 * 7 + 7) + (7 * 3 + 3)
            assert _count == _want, f"{_count} parameters, expected {_want}: are layers registered?"
            _single = DeepFNN(20, [], 3)
            assert _single(torch.randn(2, 20)).shape == (2, 3), "DeepFNN(20, [], 3): (N, 3)"
            _count = sum(p.numel() for p in _single.parameters())
            assert _count == 20 * 3 + 3, "no hidden sizes: a single linear layer"
            print("DeepFNN: output shape and parameter counts look right")
            """,
        ),
        grade_cell(manifest, "test_deep_fnn", "Tests of DeepFNN."),
        markdown(
            """
            ### N4. Initialising the weights of any network

            Write `init_weights` as its docstring says: after the call every weight of the
            linear and convolution layers has a new value, and no bias keeps the value it had.
            Iterate over `model.modules()`.

            Why Kaiming (He) initialisation? ReLU sets about half of its inputs to zero, which
            halves the variance of the signal at every layer. Drawing weights with variance
            `2 / fan_in` compensates, so activations and gradients keep their scale through
            deep ReLU networks (PyTorch's default draws smaller weights, with variance
            `1 / (3 fan_in)`). The bias barely matters at the start.
            """
        ),
        solution("init_weights", code["init_weights"]),
        visible_test(
            "init_weights",
            """
            _net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(32, 3))
            _before = [p.detach().clone() for p in _net.parameters()]
            init_weights(_net)
            for _old, (_name, _new) in zip(_before, _net.named_parameters()):
                assert not torch.equal(_old, _new), f"{_name} was not re-initialised"
            assert _net(torch.randn(2, 1, 6, 6)).shape == (2, 3)
            print("init_weights: every weight and bias of the test network changed")
            """,
        ),
        grade_cell(manifest, "test_init_weights", "Tests of init_weights."),
        markdown(
            """
            ### N5. Numbers about the network

            Fill in `answers()`; it returns a dict of plain numbers (Python ints, lists of
            ints), computed by code, not typed in, under the keys its docstring lists. It runs
            here, before the data is loaded (section DL), so it cannot use the loaders: start
            from the shape of one MNIST image, a tensor of shape `(1, 28, 28)` (one grey
            channel of 28 x 28 pixels; you may write that shape down, e.g.
            `torch.zeros(1, 28, 28)`), and compute the rest from it and from networks you
            build with your classes.

            Trainable parameters are what `model.parameters()` yields; batch norm's running
            mean and variance are buffers, not parameters (`model.modules()` and
            `isinstance` find the layers of one kind). The grader accepts the reference's
            numbers, or the numbers that are true of your own `FNN`, so a mistake in `FNN`
            is not charged here again.
            """
        ),
        solution("answers", code["answers"]),
        grade_cell(manifest, "test_answers", "Tests of the answers."),
        # ------------------------------------------------------------------ [DL]
        markdown(
            """
            ## [DL] The data loader

            ### DL1. Flattening and statistics

            Write `flatten`, a transform (`torch.flatten` does what it needs), and `mean_std`,
            as their docstrings say. Sum in float64: there are tens of millions of pixels. The
            grader compares both numbers with the reference's to within 1e-5.
            """
        ),
        solution("data_tools", code["data_tools"]),
        markdown(
            f"""
            ### DL2. Loaders

            Write `make_loaders` as its docstring says: the same seed always gives the same
            split. The statistics are those of the **training images only**: the validation
            and test images stand for data the network has never seen, and their statistics
            must not leak into training.

            When the grader measures your weights, it prepares the test images with the
            transform of your own `test_loader` (`test_loader.dataset.transform`, as your
            notebook leaves it at its end: give an experiment's loaders other names), exactly as
            the test accuracy cells below do: your weights are measured on inputs standardised
            with the statistics you trained with. (On MNIST they come out close to {mean} and
            {std}, the mean and standard deviation of all 60,000 training images; a notebook
            whose `test_loader` has no transform is measured with those two numbers.)
            """
        ),
        solution("loaders", code["loaders"]),
        visible_test(
            "data",
            """
            _image = torch.arange(784.0).reshape(1, 28, 28)
            _vector = flatten(_image)
            assert _vector.shape == (784,), f"flatten: expected (784,), got {tuple(_vector.shape)}"
            assert torch.equal(_vector, torch.arange(784.0)), "flatten: rows one after another"


            class _Images:
                data = torch.randint(0, 256, (50, 28, 28), dtype=torch.uint8)


            _m, _s = mean_std(_Images())
            _pixels = _Images.data.double() / 255
            assert isinstance(_m, float) and isinstance(_s, float), "return two Python floats"
            assert abs(_m - _pixels.mean().item()) < 1e-6, f"mean {_m}"
            assert abs(_s - _pixels.std(unbiased=False).item()) < 1e-6, f"std {_s}"
            _pairs = [(img.unsqueeze(0).float() / 255, 0) for img in _Images.data]
            assert abs(mean_std(_pairs)[0] - _m) < 1e-6, "(image, label) pairs: same mean"
            print("flatten and mean_std look right")
            """,
        ),
        grade_cell(manifest, "test_data", "Tests of flatten, mean_std and make_loaders."),
        markdown(
            f"""
            Run the cell below to build the loaders (the first run downloads MNIST). Keep it
            as it is: {config.VALIDATION_SIZE:,} of the 60,000 training images are kept for
            validation, batches of {config.RUN.batch_size}.
            """
        ),
        provided(
            "data",
            f"""
            DATA_ROOT = os.environ.get("DLGRADE_DATA", "data")
            train_loader, val_loader, test_loader = make_loaders(
                DATA_ROOT,
                batch_size={config.RUN.batch_size},
                validation_size={config.VALIDATION_SIZE},
            )
            print(
                len(train_loader.dataset), "training,", len(val_loader.dataset), "validation,",
                len(test_loader.dataset), "test images",
            )
            """,
        ),
        *trainer_and_user(manifest, code),
    ]
