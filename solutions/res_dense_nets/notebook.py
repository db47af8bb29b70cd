"""The `res_dense_nets` source notebook: instructions, solution cells, tests, in order."""

from __future__ import annotations

from pathlib import Path

from grader.manifest import Manifest
from solutions.notebook_builder import (
    Cell,
    answer,
    before_you_submit,
    grade_cell,
    introduction,
    markdown,
    provided,
    solution,
    student_chunks,
    visible_test,
    weights_or_training,
)
from solutions.res_dense_nets import config

STUDENT = Path(__file__).with_name("student.py")


def _training_cell(name: str, model_code: str, cfg: config.TrainConfig, label: str) -> Cell:
    """Train and save `name`, or load the submitted weights when the notebook is being graded."""
    training = f"""### BEGIN SOLUTION
{cfg.code(name)}
### END SOLUTION
history["{name}"] = fit({name}, optimizer, scheduler, epochs)
torch.save({name}.state_dict(), "{name}.pt")
print(f"{label}: train accuracy {{evaluate({name}, train_eval_loader, device):.4f}}, "
      f"test accuracy {{evaluate({name}, test_loader, device):.4f}}")"""
    return solution(f"train_{name}", weights_or_training(name, model_code, f"{name}.pt", training))


def cells(manifest: Manifest) -> list[Cell]:
    code = student_chunks(STUDENT)
    mean, std = manifest.mean, manifest.std
    return [
        *introduction(
            manifest,
            """
            # Residual MLPs and a small DenseNet on Fashion-MNIST

            You will build two classifiers for the ten kinds of clothing in Fashion-MNIST
            (28x28 grey images): **A)** a multilayer perceptron made of residual blocks and
            **B)** a small densely connected convolutional network (DenseNet), then train both,
            evaluate them on the test split and answer a few questions about their shapes.
            """,
            tests="shapes and a forward pass only",
            after="""
            References: He et al., *Deep Residual Learning for Image Recognition* (2015),
            arXiv:1512.03385; Huang et al., *Densely Connected Convolutional Networks* (2018),
            arXiv:1608.06993.
            """,
        ),
        provided(
            "setup",
            """
            import os

            import matplotlib.pyplot as plt
            import torch
            from torch import nn
            from torch.nn import functional as F
            from torchvision import datasets, transforms

            # Train on the GPU when there is one (Colab), else on the CPU.
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
            # Set while the notebook is graded: training cells then load your weights files.
            GRADING = bool(os.environ.get("NBGRADER_EXECUTION"))
            torch.manual_seed(0)
            print("device:", device)
            """,
        ),
        markdown(
            f"""
            ## Data

            Fashion-MNIST comes with torchvision: 60,000 training and 10,000 test images. Each
            image is scaled to [0, 1] and standardised with the training set's mean {mean[0]} and
            standard deviation {std[0]}. Do not change this cell: the grader evaluates your
            weights on test images prepared exactly this way.
            """
        ),
        provided(
            "data",
            f"""
            DATA_ROOT = os.environ.get("DLGRADE_DATA", "data")
            MEAN, STD = {tuple(mean)}, {tuple(std)}
            transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
            train_set = datasets.FashionMNIST(
                DATA_ROOT, train=True, transform=transform, download=True
            )
            test_set = datasets.FashionMNIST(
                DATA_ROOT, train=False, transform=transform, download=True
            )
            train_loader = torch.utils.data.DataLoader(
                train_set, batch_size={config.RESMLP.batch_size}, shuffle=True, num_workers=2
            )
            train_eval_loader = torch.utils.data.DataLoader(train_set, batch_size=1000)
            test_loader = torch.utils.data.DataLoader(test_set, batch_size=1000)
            print(len(train_set), "training images,", len(test_set), "test images")
            """,
        ),
        markdown(
            """
            ## A) A multilayer perceptron with residual connections

            ### A1. The residual block

            Write `ResBlock`, a subclass of `nn.Module`, as its docstring says: the addition of
            the block's input `x` is the skip (identity) connection.
            """
        ),
        solution("resblock", code["resblock"]),
        visible_test(
            "resblock",
            """
            block = ResBlock(20, 7)
            assert isinstance(block, nn.Module), "ResBlock must subclass nn.Module"
            out = block(torch.randn(3, 20))
            assert out.shape == (3, 20), f"expected output (3, 20), got {tuple(out.shape)}"
            n_params = sum(p.numel() for p in block.parameters())
            assert n_params == 20 * 7 + 7 + 7 * 20 + 20, f"{n_params} parameters: widths 20->7->20?"
            print("ResBlock: shapes and parameter count look right")
            """,
        ),
        grade_cell(manifest, "test_resblock", "Tests of ResBlock."),
        markdown(
            """
            ### A2. The residual MLP

            Build `ResMLP` from your `ResBlock`, as its docstring says and nothing more (no
            dropout, no batch norm). Return the raw scores (logits): `nn.CrossEntropyLoss`
            applies the softmax itself. Register the blocks as submodules (attributes,
            `nn.Sequential` or `nn.ModuleList`, not a Python list), or PyTorch will neither
            train nor save them.
            """
        ),
        solution("resmlp", code["resmlp"]),
        visible_test(
            "resmlp",
            """
            out = ResMLP()(torch.randn(5, 1, 28, 28))
            assert out.shape == (5, 10), f"expected (5, 10) logits, got {tuple(out.shape)}"
            print("ResMLP: output shape looks right")
            """,
        ),
        grade_cell(manifest, "test_resmlp", "Tests of ResMLP."),
        markdown(
            """
            ### A3. Training and evaluation

            Write the two functions every model of this notebook is trained and evaluated with.

            * `train_epoch(model, loader, optimizer, device)` trains for one pass over `loader`
              with the cross-entropy loss (`nn.CrossEntropyLoss` on the raw logits) and returns
              the mean training loss as a Python float: the average over the images of the
              epoch, that is the sum of `loss.item() * batch_size` divided by the number of
              images. It calls `optimizer.zero_grad()` before every `loss.backward()`, moves
              the model and every batch to `device` and puts the model in training mode.
            * `evaluate(model, loader, device)` returns the accuracy over `loader` as a fraction
              between 0 and 1: the number of correct predictions over all images divided by
              the number of images (not an average of per-batch accuracies: the last batch may
              be smaller). It moves the model and every batch to `device`, puts the model in
              evaluation mode and computes no gradients (`torch.no_grad()`).

            Batch norm and dropout behave differently in training and in evaluation: see
            `nn.Module.train()` and `nn.Module.eval()`. A model and its data must be on the
            same device: see `.to(device)`.
            """
        ),
        solution("loops", code["loops"]),
        visible_test(
            "loops",
            """
            _model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))
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
        provided(
            "fit",
            """
            history = {}


            def fit(model, optimizer, scheduler, epochs):
                \"\"\"Train for `epochs` epochs; return the per-epoch loss and test accuracy.

                `scheduler` is an epoch-wise learning-rate scheduler (stepped once after each
                epoch, e.g. CosineAnnealingLR or StepLR), or None for a constant rate.
                \"\"\"
                curve = {"loss": [], "test_accuracy": []}
                for epoch in range(epochs):
                    curve["loss"].append(train_epoch(model, train_loader, optimizer, device))
                    curve["test_accuracy"].append(evaluate(model, test_loader, device))
                    if scheduler is not None:
                        scheduler.step()
                    print(f"epoch {epoch + 1}: loss {curve['loss'][-1]:.4f}, "
                          f"test accuracy {curve['test_accuracy'][-1]:.4f}")
                return curve
            """,
        ),
        markdown(
            """
            ### A4. Train the residual MLP

            Choose an optimiser, a learning-rate schedule and a number of epochs, train, and
            keep the weights: the cell saves them to `resmlp.pt`, which you hand in. Aim for a
            test accuracy of at least 0.89. Then try other hyper-parameters (learning rate,
            momentum, weight decay, epochs, widths of the blocks) and note what helped: in new
            cells below, with new names for changed classes and files, so that `ResBlock`,
            `ResMLP` and `resmlp.pt` stay as the tasks ask.
            """
        ),
        _training_cell("resmlp", "ResMLP()", config.RESMLP, "ResMLP"),
        markdown(
            """
            **Question A5.** Compare the accuracy on the training and on the test data. What
            did changing the hyper-parameters do, and what is the best test accuracy you got?
            """
        ),
        answer("answer_resmlp"),
        markdown(
            """
            ## B) A small DenseNet

            ### B1. The dense block

            In a dense block every layer receives the outputs of *all* earlier layers:
            layer l computes `x_l = H_l([x_0, x_1, ..., x_(l-1)])`, where `[...]` is the
            concatenation along the channels and `x_0` is the block's input; the block returns
            `[x_0, x_1, ..., x_L]`. Features are concatenated, never summed, the block input
            first (the newest-first order is accepted too). Each `H_l` is exactly the three
            modules of the docstring, nothing more: no other activation, no dropout, and the
            convolution keeps PyTorch's default bias.
            """
        ),
        solution("denseblock", code["denseblock"]),
        visible_test(
            "denseblock",
            """
            out = DenseBlock(3, 2, 5)(torch.randn(2, 3, 9, 9))
            assert out.shape == (2, 3 + 2 * 5, 9, 9), f"got {tuple(out.shape)}"
            print("DenseBlock: output shape looks right")
            """,
        ),
        grade_cell(manifest, "test_denseblock", "Tests of DenseBlock."),
        markdown(
            """
            ### B2. The transition layer

            Dense blocks keep the spatial size and add channels; transition layers between them
            shrink both, with the docstring's three modules in its order and nothing else (no
            activation).
            """
        ),
        solution("transition", code["transition"]),
        visible_test(
            "transition",
            """
            out = Transition(10, 6)(torch.randn(2, 10, 8, 8))
            assert out.shape == (2, 6, 4, 4), f"got {tuple(out.shape)}"
            print("Transition: output shape looks right")
            """,
        ),
        grade_cell(manifest, "test_transition", "Tests of Transition."),
        markdown(
            """
            ### B3. The DenseNet

            Build `DenseNet(growth_rate)` from your blocks, for `(N, 1, 28, 28)` inputs:

            1. a 3x3 convolution with 4 output channels that keeps the 28x28 size,
            2. 2x2 average pooling with stride 2 (no padding),
            3. a dense block with 3 layers,
            4. a transition layer back to 4 channels,
            5. a second dense block with 3 layers,
            6. global average pooling and a fully connected layer to 10 logits.

            Use PyTorch's default layers (convolutions and linear layers with their bias) and no
            others: no batch norm or activation after the first convolution, no dropout.
            """
        ),
        solution("densenet", code["densenet"]),
        visible_test(
            "densenet",
            """
            out = DenseNet(6)(torch.randn(2, 1, 28, 28))
            assert out.shape == (2, 10), f"expected (2, 10) logits, got {tuple(out.shape)}"
            print("DenseNet: output shape looks right")
            """,
        ),
        grade_cell(manifest, "test_densenet", "Tests of DenseNet."),
        markdown(
            """
            ### B4. Shapes inside the network

            For `DenseNet(12)`, answer by filling in `shape_answers()`; it returns a dict:

            * `block1_spatial`: height and width seen by the first dense block, as `[H, W]`
              (a list or a tuple);
            * `block1_in_channels`, `block1_out_channels`: its input and output channels;
            * `block2_spatial`: height and width seen by the second dense block;
            * `fc_in_features`: the size of the input of the final fully connected layer.

            You may compute the answers by running the model (forward hooks help) or write
            the numbers you worked out.
            """
        ),
        solution("answers", code["answers"]),
        grade_cell(manifest, "test_answers", "Tests of the shape answers."),
        markdown(
            f"""
            ### B5. Train the DenseNet

            Train `DenseNet({config.DENSENET_GROWTH_RATE})` (growth rate
            {config.DENSENET_GROWTH_RATE}) and keep its weights in `densenet.pt`. Aim for a
            test accuracy of at least 0.85. Small convolutions like these are slow on a CPU:
            use the GPU.
            """
        ),
        _training_cell(
            "densenet", f"DenseNet({config.DENSENET_GROWTH_RATE})", config.DENSENET, "DenseNet"
        ),
        provided(
            "curves",
            """
            if history:
                fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.5))
                for name, curve in history.items():
                    epochs = range(1, len(curve["loss"]) + 1)
                    ax_loss.plot(epochs, curve["loss"], label=name)
                    ax_acc.plot(epochs, curve["test_accuracy"], label=name)
                ax_loss.set(xlabel="epoch", ylabel="training loss")
                ax_acc.set(xlabel="epoch", ylabel="test accuracy")
                ax_loss.legend()
                plt.show()
            """,
        ),
        markdown(
            """
            **Question B6.** How does the DenseNet compare with the residual MLP, given how
            many parameters each has? Which hyper-parameters did you try?
            """
        ),
        answer("answer_densenet"),
        grade_cell(
            manifest, "test_accuracy", "Accuracy of your submitted weights on the test split."
        ),
        *before_you_submit(manifest, "the training cells load your weights files, a minute or two"),
    ]
