"""The `mlp_tuning` source notebook: instructions, solution cells, tests, in order (the search
and the final model in `notebook_search`)."""

from __future__ import annotations

from pathlib import Path

from grader.manifest import Manifest
from solutions.mlp_tuning.notebook_search import final_part, search_part
from solutions.notebook_builder import (
    Cell,
    answer,
    grade_cell,
    introduction,
    markdown,
    provided,
    solution,
    student_chunks,
    visible_test,
)

STUDENT = Path(__file__).with_name("student.py")


def _intro(manifest: Manifest) -> list[Cell]:
    return introduction(
        manifest,
        """
        # Tuning a multilayer perceptron on Fashion-MNIST

        You will improve a plain fully connected network (a multilayer perceptron, MLP) for the
        ten kinds of clothing in Fashion-MNIST (28x28 grey images) in five steps, then search
        for good hyper-parameters the way practitioners do:

        1. **standardise** the images with a mean image and a standard-deviation image computed
           on the training images;
        2. **augment** the training images (random flips, rotations and resized crops);
        3. make the network's **capacity** (number and width of hidden layers),
        4. its **activation function** and
        5. its **dropout** probability arguments of one `MLP` class;
        6. **search** the hyper-parameters with [Optuna](https://optuna.org), coarse to fine,
           choosing by validation accuracy only;
        7. train the chosen configuration, and measure its accuracy on the test split **once**.
        """,
        tests="shapes and a few values only",
        skipped="the search and training cells do not run: they load these files (the weights"
        " and the configuration of your final model; section 7 says more)",
        measured="the test accuracy through *your* evaluation transform and *your* `mean_image`"
        " and `std_image`",
        after="The three best test accuracies of the class earn bonus points.",
    )


def _setup() -> Cell:
    return provided(
        "setup",
        """
        import json
        import math
        import os
        import time

        import matplotlib.pyplot as plt
        import torch
        from torch import nn
        from torch.utils.data import DataLoader, Dataset, Subset, random_split
        from torchvision import datasets, transforms

        try:
            import optuna
        except ImportError:  # Colab does not come with Optuna: install it once
            %pip install --quiet optuna
            import optuna

        # Train on the GPU when there is one (Colab), else on the CPU.
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        # Set while the notebook is graded: the search and training cells then load your files.
        GRADING = bool(os.environ.get("NBGRADER_EXECUTION"))
        # Weights & Biases is optional: set to True to also log every trial to your W&B account.
        USE_WANDB = False
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        torch.manual_seed(0)
        print("device:", device, "| optuna", optuna.__version__)
        """,
    )


def _data() -> list[Cell]:
    return [
        markdown(
            """
            ## 1. Data: training, validation and test splits

            torchvision's Fashion-MNIST has 60,000 training images and 10,000 test images
            (1,000 of each class). `split_train_validation` (in the next section) splits the
            60,000 at random into **55,000 for training and 5,000 for validation**: the
            validation images choose the hyper-parameters, and the test images are used once,
            for the final model only.

            The datasets below are loaded *without* a transform: each item is a PIL image and
            its label. Transforms are attached later, one for training and one for evaluation.
            """
        ),
        provided(
            "data",
            """
            DATA_ROOT = os.environ.get("DLGRADE_DATA", "data")
            full_train_set = datasets.FashionMNIST(DATA_ROOT, train=True, download=True)
            test_set = datasets.FashionMNIST(DATA_ROOT, train=False, download=True)
            CLASSES = full_train_set.classes
            print(len(full_train_set), "training images,", len(test_set), "test images")
            """,
        ),
    ]


def _statistics(code: dict[str, str]) -> list[Cell]:
    return [
        markdown(
            """
            ## 2. Standardisation

            Standardising the inputs gives every input dimension a similar scale, which
            usually makes training faster. Here every *pixel* gets its own statistics. With
            $X_0, \\dots, X_{N-1}$ the $N$ images of the **training subset** (pixel values on
            the 0..1 scale, as `ToTensor` gives them), the mean image and the standard-deviation
            image are computed pixel by pixel:

            $$X_\\mu = \\frac{1}{N} \\sum_{i=0}^{N-1} X_i \\qquad
              X_\\sigma = \\sqrt{\\frac{1}{N} \\sum_{i=0}^{N-1} (X_i - X_\\mu)^2} + 10^{-5}$$

            (the square and the root are taken per pixel; note $1/N$, not $1/(N-1)$), and an
            image $X$ is fed to the network as $\\hat X = (X - X_\\mu) / X_\\sigma$. The
            $10^{-5}$ keeps pixels that are black in every image (standard deviation 0) from
            dividing by zero.

            Write `split_train_validation` and `standardisation_images` as their docstrings
            say. `subset.dataset.data` holds **all** 60,000 images: use only those that
            `subset.indices` names (reading `.data` directly is much faster than looping over
            the subset's PIL images). The grader compares the images pixel by pixel with the
            formula's values to within a relative error of $10^{-5}$ (and $10^{-6}$ absolute):
            computing in float32, or in float64 and converting to float32 at the end, both pass.
            """
        ),
        solution("split", code["split"]),
        solution("statistics", code["statistics"]),
        provided(
            "statistics_of_training",
            """
            train_subset, val_subset = split_train_validation(full_train_set)
            # Statistics of the 55,000 training images only, reused for validation and test.
            mean_image, std_image = standardisation_images(train_subset)
            fig, axes = plt.subplots(1, 2, figsize=(6, 3))
            for ax, image, title in zip(axes, (mean_image, std_image), ("mean image", "std image")):
                ax.imshow(image, cmap="gray")
                ax.set_title(title)
                ax.axis("off")
            plt.show()
            """,
        ),
        visible_test(
            "statistics",
            """
            assert len(train_subset) == 55000 and len(val_subset) == 5000, "split 55,000 / 5,000"
            assert tuple(mean_image.shape) == (28, 28), f"mean image: {tuple(mean_image.shape)}"
            assert tuple(std_image.shape) == (28, 28), f"std image: {tuple(std_image.shape)}"
            assert mean_image.dtype == torch.float32 and std_image.dtype == torch.float32
            assert 0 <= float(mean_image.min()) <= float(mean_image.max()) <= 1, "0..1 scale"
            assert float(std_image.min()) > 0, "add 1e-5 to the standard deviation"
            print("mean and std images: shapes and ranges look right")
            """,
        ),
    ]


def cells(manifest: Manifest) -> list[Cell]:
    code = student_chunks(STUDENT)
    return [
        *_intro(manifest),
        _setup(),
        *_data(),
        *_statistics(code),
        grade_cell(manifest, "test_statistics", "Tests of the split and the statistics."),
        markdown(
            """
            **Question 2.** Why are the mean and standard deviation computed on the training
            images only, and then used unchanged for the validation and test images?
            """
        ),
        answer("answer_statistics"),
        markdown(
            """
            ## 3. Transforms and data augmentation

            torchvision's `transforms.Normalize` subtracts one mean *per channel*; we need one
            per pixel. Write the transform class `Standardise` and `make_transforms` as their
            docstrings say (the transforms are those of `torchvision.transforms`).

            With every switch off the two transforms give the same result. Augmenting creates
            new, slightly different training images every epoch (a pullover turned by a few
            degrees is still a pullover), which often helps a network generalise.
            `TransformedSubset` (given) gives a subset a transform of its own.
            """
        ),
        solution("transforms", code["transforms"]),
        visible_test(
            "transforms",
            """
            _image = full_train_set[0][0]  # a PIL image
            _train_tf, _eval_tf = make_transforms(mean_image, std_image)
            _x = _eval_tf(_image)
            assert tuple(_x.shape) == (1, 28, 28), f"expected (1, 28, 28), got {tuple(_x.shape)}"
            assert torch.equal(_x, _eval_tf(_image)), "the evaluation transform must not be random"
            assert torch.allclose(_train_tf(_image), _x), "all switches off: train == eval"
            _train_tf, _eval_tf = make_transforms(mean_image, std_image, flip=True, rotation=True,
                                                  resized_crop=True)
            _outputs = [_train_tf(_image) for _ in range(5)]
            assert any(not torch.equal(_outputs[0], o) for o in _outputs[1:]), "augment training"
            assert torch.equal(_eval_tf(_image), _x), "augmentations belong to training only"
            print("transforms: shapes, switches and determinism look right")
            """,
        ),
        grade_cell(manifest, "test_transforms", "Tests of the transforms."),
        markdown(
            """
            ## 4. A configurable MLP

            Write `MLP`, a subclass of `nn.Module`, as its docstring says. `activation` is a
            string, so that a configuration can be saved as JSON, and must really be the one
            used. Register the layers as submodules (`nn.Sequential` or `nn.ModuleList`, not a
            Python list), or PyTorch will neither train nor save them. Dropout is active in
            training mode only: `model.eval()` switches it off.
            """
        ),
        solution("mlp", code["mlp"]),
        visible_test(
            "mlp",
            """
            _model = MLP(hidden_layers=2, width=32, activation="tanh", dropout=0.5)
            _out = _model(torch.randn(4, 1, 28, 28))
            assert tuple(_out.shape) == (4, 10), f"expected (4, 10) logits, got {tuple(_out.shape)}"
            assert tuple(_model(torch.randn(3, 784)).shape) == (3, 10), "accept (N, 784) too"
            _count = sum(p.numel() for p in _model.parameters())
            assert _count == 784 * 32 + 32 + 32 * 32 + 32 + 32 * 10 + 10, f"{_count} parameters"
            assert sum(p.numel() for p in MLP(hidden_layers=1, width=64).parameters()) == (
                784 * 64 + 64 + 64 * 10 + 10
            ), "hidden_layers=1: one hidden layer"
            print("MLP: shapes and parameter counts look right")
            """,
        ),
        grade_cell(manifest, "test_mlp", "Tests of the MLP."),
        markdown(
            """
            ## 5. Training and evaluation

            Write `train_epoch` (one pass of training with the cross-entropy loss) and
            `evaluate` as their docstrings say: the loss is a **mean per image**, the accuracy
            a **fraction** of the whole loader's images.
            """
        ),
        solution("loops", code["loops"]),
        visible_test(
            "loops",
            """
            _model = MLP(hidden_layers=1, width=16)
            _data = torch.utils.data.TensorDataset(torch.randn(8, 1, 28, 28), torch.arange(8))
            _batches = torch.utils.data.DataLoader(_data, batch_size=4)
            _optimizer = torch.optim.SGD(_model.parameters(), lr=0.1)
            _loss = train_epoch(_model, _batches, _optimizer, "cpu")
            assert isinstance(_loss, float), f"train_epoch should return a float, got {_loss!r}"
            _acc = evaluate(_model, _batches, "cpu")
            assert 0.0 <= _acc <= 1.0, f"evaluate should return a fraction, got {_acc!r}"
            print("train_epoch and evaluate run")
            """,
        ),
        grade_cell(manifest, "test_loops", "Tests of train_epoch and evaluate."),
        grade_cell(
            manifest, "test_device", "Tests of device placement in train_epoch and evaluate."
        ),
        *search_part(code, manifest),
        *final_part(manifest),
    ]
