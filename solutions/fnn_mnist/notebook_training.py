"""Parts [NT] and [NU] of the `fnn_mnist` source notebook, then the training runs, the
questions for discussion and the pre-submission check: instructions, solution cells, tests."""

from __future__ import annotations

from grader.manifest import Manifest
from solutions.fnn_mnist import config, student
from solutions.notebook_builder import (
    Cell,
    answer,
    before_you_submit,
    grade_cell,
    markdown,
    provided,
    solution,
    visible_test,
    weights_or_training,
)


def training_cell(name: str, model_code: str, label: str) -> Cell:
    """Train `name` with the NetworkTrainer and save it, or load the submitted weights."""
    training = f"""### BEGIN SOLUTION
{config.RUN.code(name)}
### END SOLUTION
trainer = NetworkTrainer({name}, train_loader, val_loader, criterion, optimizer, device)
history["{label}"] = trainer.train_network(epochs)
NetworkUser({name}, device).save("{name}.pt")"""
    return solution(f"train_{name}", weights_or_training(name, model_code, f"{name}.pt", training))


def questions(**texts: str) -> list[Cell]:
    """Per question number=text: the question and a markdown cell for its answer (read by
    people, no points)."""
    return [
        cell
        for number, text in texts.items()
        for cell in (markdown(f"**Question {number}.** {text}"), answer(f"answer_{number.lower()}"))
    ]


# The sheet's questions for discussion, after the training runs.
BONUS = {
    "B1": "Batch norm is sometimes used *after* the activation instead of before it. Try it "
    "(write a variant of `dense_layer` under another name, such as `dense_layer_after`, so that "
    "`dense_layer` stays as the task above asks): how does training change?",
    "B2": "Train with `regularization=l2_regularization` and then with "
    "`regularization=l1_regularization` (wrap them to choose a lambda). How do the results "
    "change? Why could L1 be more attractive than L2? What does Adam's `weight_decay` argument "
    "have to do with the L2 penalty?",
    "B3": "How does the accuracy change with the number of hidden units, the number of hidden "
    "layers, and the activation of the hidden layers, one at a time and all at once?",
    "B4": "What if you treated the task as regression: keep the plain linear output layer and "
    "train with `nn.MSELoss` (against one-hot targets)? What do you expect, and does the "
    "network still learn?",
    "B5": "Draw a digit yourself (28x28, white on black) and ask your network. How could the "
    "training set be enlarged artificially (data augmentation), and why could that help?",
}


def trainer_and_user(manifest: Manifest, code: dict[str, str]) -> list[Cell]:
    """The cells from [NT] to the end of the notebook."""
    fnn, fnn_bn = manifest.model("fnn"), manifest.model("fnn_bn")
    return [
        # ------------------------------------------------------------------ [NT]
        markdown(
            """
            ## [NT] The network trainer

            ### NT1. Counting correct predictions

            Write `sum_correct_preds` as its docstring says: `outputs` has one row per sample
            and one column per class. It returns a count because the trainer adds the counts
            of all batches and divides by the number of samples.
            """
        ),
        solution("sum_correct_preds", code["sum_correct_preds"]),
        markdown(
            """
            ### NT2. L1 and L2 penalties

            A penalty on the size of the parameters, added to the loss, pulls the weights
            towards zero and so makes overfitting harder. Write `l2_regularization` and
            `l1_regularization` as their docstrings say: both stay in the autograd graph, so
            that `loss + penalty` can be back-propagated.
            """
        ),
        solution("regularization", code["regularization"]),
        visible_test(
            "metrics",
            """
            _scores = torch.tensor([[2.0, 1, 0], [0, 0.5, 3], [1, 4, 0], [0, 0, 1]])  # (4, 3)
            _count = sum_correct_preds(_scores, torch.tensor([0, 2, 0, 1]))
            assert type(_count) is int, f"return a Python int, not {type(_count).__name__}"
            assert _count == 2, f"2 of the 4 rows are right, got {_count}"
            _lin = nn.Linear(2, 1)
            with torch.no_grad():
                _lin.weight.copy_(torch.tensor([[1.0, -2.0]]))
                _lin.bias.fill_(3.0)
            _l2 = l2_regularization(_lin, l2_lambda=0.5)
            _l1 = l1_regularization(_lin, l1_lambda=0.5)
            assert abs(_l2.item() - 0.5 * (1 + 4 + 9)) < 1e-6, f"L2 penalty {_l2.item()}"
            assert abs(_l1.item() - 0.5 * (1 + 2 + 3)) < 1e-6, f"L1 penalty {_l1.item()}"
            assert _l2.requires_grad, "the penalty must be differentiable (no .item())"
            print("sum_correct_preds and the penalties look right")
            """,
        ),
        grade_cell(manifest, "test_metrics", "Tests of sum_correct_preds and the penalties."),
        markdown(
            """
            ### NT3. The `NetworkTrainer`

            The trainer is a gym for any `nn.Module`, not only FNNs. The given part of
            `__init__` keeps its arguments; write the rest of `__init__` and its three methods
            as their docstrings say. The losses are means **per sample**: the mean of the batch
            means is wrong when the last batch is shorter. The training loss is the loss you
            minimise, so it includes the penalty. Validation must change nothing, neither the
            weights nor batch norm's running statistics, and needs no gradients (which saves
            time and memory). Printing a line per epoch in `train_network` helps. The trainer
            keeps its optimizer's learning rate: no learning-rate scheduler, not even one that
            would change the rate only after several epochs.
            """
        ),
        solution("trainer", code["trainer"]),
        visible_test(
            "trainer",
            """
            _data = TensorDataset(torch.randn(10, 784), torch.randint(0, 10, (10,)))
            _model = nn.Linear(784, 10)
            _trainer = NetworkTrainer(
                _model,
                DataLoader(_data, batch_size=4),  # batches of 4, 4 and 2
                DataLoader(_data, batch_size=4),
                nn.CrossEntropyLoss(),
                torch.optim.SGD(_model.parameters(), lr=0.01),
                "cpu",
            )
            _history = _trainer.train_network(2)
            assert set(_history) == {"train_loss", "val_loss", "train_accuracy", "val_accuracy"}
            assert all(len(v) == 2 for v in _history.values()), "one entry per epoch"
            assert all(0 <= a <= 1 for a in _history["val_accuracy"]), "accuracy is a fraction"
            _loss, _acc = _trainer.validate()
            with torch.no_grad():
                _want = F.cross_entropy(_model(_data.tensors[0]), _data.tensors[1]).item()
            assert abs(_loss - _want) < 1e-5, f"validation loss {_loss}, per sample {_want}"
            print("NetworkTrainer runs, and its validation loss is the per-sample mean")
            """,
        ),
        grade_cell(manifest, "test_trainer", "Tests of NetworkTrainer."),
        grade_cell(manifest, "test_trainer_device", "Tests of device placement in NetworkTrainer."),
        # ------------------------------------------------------------------ [NU]
        markdown(
            """
            ## [NU] The network user

            `NetworkUser(model, device="cpu")` decouples using a trained network from
            training it. Write its methods as their docstrings say. `predict` runs in
            evaluation mode (`self.model.eval()`) and without gradients (`torch.no_grad()`) so
            that batch norm uses its running statistics: the grader checks it with a network
            whose predictions change in training mode or with gradients. `show_predictions`
            returns a matplotlib figure; the loaders give flattened images, so reshape each to
            `(28, 28)` to show it.
            """
        ),
        solution("user", code["user"]),
        visible_test(
            "user",
            """
            _net = FNN(784, 7, 3)
            _inputs = torch.randn(6, 784)  # flattened images, as the loaders give them
            _user = NetworkUser(_net)
            _labels = _user.predict(_inputs)
            assert _labels.dtype == torch.int64 and _labels.shape == (6,), "int64 labels (N,)"
            _user.save("_roundtrip.pt")
            _fresh = NetworkUser(FNN(784, 7, 3))
            _fresh.load("_roundtrip.pt")
            os.remove("_roundtrip.pt")
            assert torch.equal(_fresh.predict(_inputs), _labels), "loaded net predicts otherwise"
            _dropout = nn.Sequential(nn.Linear(784, 64), nn.Dropout(0.9), nn.Linear(64, 9))
            _noisy = NetworkUser(_dropout.train())  # dropout on: predict must switch it off
            _runs = [_noisy.predict(_inputs) for _ in range(6)]
            assert all(torch.equal(_runs[0], r) for r in _runs), "predict must call model.eval()"
            print("NetworkUser: save, load and predict look right")
            """,
        ),
        grade_cell(manifest, "test_user", "Tests of NetworkUser."),
        # ------------------------------------------------------------------ training
        markdown(
            f"""
            ## Training

            MNIST is a classification task. The sheet's choice for the output is a softmax
            followed by the negative log-likelihood loss (NLL). `nn.CrossEntropyLoss` does
            exactly that in one step, on the raw scores: it applies `log_softmax` to the
            logits and then the NLL, more stably than a separate softmax and logarithm could.
            So the network returns logits, and the criterion is `nn.CrossEntropyLoss()`.

            Train the FNN with hidden layers of `HIDDEN_SIZE` = {student.HIDDEN_SIZE} units and
            ReLU. Set up the training in the cell below: initialise the weights with your
            `init_weights`, set `criterion = nn.CrossEntropyLoss()`, and choose the optimiser
            (`optimizer`) and the number of epochs (`epochs`). The sheet's settings work well:
            Adam with a learning rate of 0.001, about 12 epochs (under a minute on a GPU). The
            cell then trains with your `NetworkTrainer` and saves the weights with your
            `NetworkUser` to `{fnn.weights}`, which you hand in (at most
            {fnn.max_weights_mb:g} MB). Aim for a test accuracy of at least 0.97.
            """
        ),
        provided("history", "history = {}  # training curves, by model"),
        training_cell("fnn", "FNN(784, HIDDEN_SIZE, 10)", "FNN"),
        provided(
            "evaluate",
            """
            def test_accuracy(path, **kwargs):
                \"\"\"Accuracy on the test split of saved weights, loaded into a fresh FNN.\"\"\"
                user = NetworkUser(FNN(784, HIDDEN_SIZE, 10, **kwargs), device)
                user.load(path)
                correct = total = 0
                for images, labels in test_loader:
                    correct += int((user.predict(images) == labels).sum())
                    total += len(labels)
                return correct / total


            print(f"FNN test accuracy: {test_accuracy('fnn.pt'):.4f}")
            """,
        ),
        *questions(
            NT1="Why is `nn.CrossEntropyLoss` on logits the same as a softmax output "
            "layer with the NLL loss? What would go wrong if the network applied a softmax "
            "itself before `nn.CrossEntropyLoss`? And why is ReLU a good choice for the "
            "hidden layers?",
            NT2="How does the network do on the training and on the validation data, "
            "epoch by epoch? How well does it generalise to the test images it has never "
            "seen?",
        ),
        markdown(
            f"""
            ### Training with batch norm

            Now the same FNN with batch norm in both hidden layers, set up the same way
            (`criterion = nn.CrossEntropyLoss()`). Batch norm lets training use larger learning
            rates; try some. Keep the weights in `{fnn_bn.weights}` (at most
            {fnn_bn.max_weights_mb:g} MB); aim for a test accuracy of at least 0.97 here too.
            """
        ),
        training_cell("fnn_bn", "FNN(784, HIDDEN_SIZE, 10, batch_norm=True)", "FNN+BN"),
        provided(
            "evaluate_bn",
            """
            accuracy_bn = test_accuracy("fnn_bn.pt", batch_norm=True)
            print(f"FNN with batch norm, test accuracy: {accuracy_bn:.4f}")
            """,
        ),
        provided(
            "curves",
            """
            if history:
                fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.5))
                for name, curve in history.items():
                    epochs = range(1, len(curve["train_loss"]) + 1)
                    (line,) = ax_loss.plot(epochs, curve["train_loss"], label=f"{name} train")
                    c = line.get_color()
                    ax_loss.plot(epochs, curve["val_loss"], ":", color=c, label=f"{name} val")
                    ax_acc.plot(epochs, curve["train_accuracy"], color=c, label=f"{name} train")
                    ax_acc.plot(epochs, curve["val_accuracy"], ":", color=c, label=f"{name} val")
                ax_loss.set(xlabel="epoch", ylabel="loss per sample")
                ax_acc.set(xlabel="epoch", ylabel="accuracy")
                ax_loss.legend()
                plt.show()
            """,
        ),
        *questions(NT3="How does batch norm change the training, compared with the plain FNN?"),
        markdown(
            """
            ### Looking at predictions

            The cell below loads your saved FNN into a fresh network with `NetworkUser` and
            shows some test images with their predicted and true labels (wrong ones in red).
            """
        ),
        provided(
            "predictions",
            """
            _images, _labels = next(iter(test_loader))
            user = NetworkUser(FNN(784, HIDDEN_SIZE, 10), device)
            user.load("fnn.pt")
            user.show_predictions(_images, _labels, n=8)
            plt.show()
            """,
        ),
        *questions(
            NU1="Look at more test images, especially misclassified ones (change the "
            "batch or `n`). What do the digits the network gets wrong have in common? Would "
            "you have read them right?",
        ),
        # ------------------------------------------------------------------ bonus questions
        markdown(
            """
            ## Going further (questions for discussion)

            Nothing below is graded automatically; your answers are read by people. Use your
            code structure to try things out: `DeepFNN` for other depths and widths, the
            `regularization` argument of the trainer, other activations.
            """
        ),
        *questions(**BONUS),
        grade_cell(
            manifest, "test_accuracy", "Accuracy of your submitted weights on the test split."
        ),
        *before_you_submit(manifest, "the training cells load your weights files, a minute or two"),
    ]
