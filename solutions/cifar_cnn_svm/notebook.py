"""The `cifar_cnn_svm` source notebook: instructions, solution cells, tests, in order."""

from __future__ import annotations

from pathlib import Path

from grader.manifest import Manifest
from solutions.cifar_cnn_svm import config
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

STUDENT = Path(__file__).with_name("student.py")


def _training_cell(name: str, cls: str, criterion: str) -> Cell:
    """Train and save `name` with the sheet's settings, or load the submitted weights."""
    training = f"""optimizer = torch.optim.Adam({name}.parameters(), lr={config.LR})
fit({name}, optimizer, {config.EPOCHS}, {criterion})
torch.save({name}.state_dict(), "{name}.pt")
print(f"{cls}: test accuracy {{evaluate({name}, test_loader, device):.2f}}")"""
    return provided(f"train_{name}", weights_or_training(name, f"{cls}()", f"{name}.pt", training))


def cells(manifest: Manifest) -> list[Cell]:
    code = student_chunks(STUDENT)
    dense, cnn = manifest.model("dense"), manifest.model("cnn")
    widths = list(config.WIDTHS)
    return [
        *introduction(
            manifest,
            """
            # Deep classification: a dense network, a CNN and an SVM on CIFAR-10

            **Part 1** classifies the 32x32 colour pictures of CIFAR-10 (ten kinds of objects)
            three ways: a fully connected network, a convolutional network and a support vector
            machine. **Part 2** shows on a small two-dimensional data set what hidden layers
            add to logistic regression.
            """,
            tests="shapes only",
            note="Every function's docstring says what it takes and what it returns.",
            skipped="the cells that train (and the SVM and part 2 runs) do not run: the training"
            " cells load these files",
            measured="their accuracy on the CIFAR-10 test set, normalised as below",
        ),
        provided(
            "setup",
            f"""
            import os

            import matplotlib.pyplot as plt
            import numpy as np
            import torch
            from sklearn.linear_model import LogisticRegression
            from sklearn.model_selection import train_test_split
            from sklearn.svm import SVC
            from torch import nn
            from torch.nn import functional as F
            from torch.utils.data import DataLoader, TensorDataset
            from torchvision import datasets, transforms

            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
            # Set while the notebook is graded: training cells then load your weights files.
            GRADING = bool(os.environ.get("NBGRADER_EXECUTION"))
            # The sheet's normalisation: per channel (red, green, blue) mean and std.
            MEAN, STD = {tuple(manifest.mean)}, {tuple(manifest.std)}
            """,
        ),
        markdown(
            """
            ## Part 1: recognising objects

            ### 1.0 Transforms

            Write `make_transforms()`. The sheet used its random training transform for the
            test set too. Don't: a test image would then be judged on a different random crop
            each time, and the test accuracy would measure the crops as well as the model.
            """
        ),
        solution("transforms", code["transforms"]),
        visible_test(
            "transforms",
            """
            from PIL import Image

            _image = Image.fromarray(np.random.randint(0, 256, (32, 32, 3), dtype=np.uint8))
            _out = test_transform(_image)
            assert _out.shape == (3, 32, 32), f"expected a (3, 32, 32) tensor, got {_out.shape}"
            assert torch.equal(_out, test_transform(_image)), "test_transform must not be random"
            assert train_transform(_image).shape == (3, 32, 32)
            print("transforms: shapes right, test transform deterministic")
            """,
        ),
        grade_cell(manifest, "test_transforms", "Tests of make_transforms."),
        markdown(
            """
            The data: torchvision downloads CIFAR-10 into `data/` the first time. The loaders
            use the sheet's batches of 50.
            """
        ),
        provided(
            "data",
            """
            DATA_ROOT = os.environ.get("DLGRADE_DATA", "data")


            class CIFAR10(datasets.CIFAR10):
                \"\"\"torchvision's CIFAR-10. Where the course tests or grades notebooks
                (DLGRADE_DATA set) the files may be a generated stand-in in CIFAR-10's format,
                which cannot match the published checksums: there only their presence counts.\"\"\"

                if "DLGRADE_DATA" in os.environ:
                    train_list = [[name, None] for name, _ in datasets.CIFAR10.train_list]
                    test_list = [[name, None] for name, _ in datasets.CIFAR10.test_list]
                    meta = {**datasets.CIFAR10.meta, "md5": None}


            train_set = CIFAR10(DATA_ROOT, train=True, download=True, transform=train_transform)
            test_set = CIFAR10(DATA_ROOT, train=False, download=True, transform=test_transform)
            train_loader = DataLoader(train_set, batch_size=50, shuffle=True, num_workers=2)
            test_loader = DataLoader(test_set, batch_size=50, shuffle=False)
            """,
        ),
        markdown(
            """
            ### 1.1 and 1.2 The data sets

            Write `data_answers(train_set, test_set)` from the data sets you are given, which
            may be any torchvision data set: no numbers or names written in.
            """
        ),
        solution("data_answers", code["data_answers"]),
        provided("show_data_answers", "print(data_answers(train_set, test_set))"),
        grade_cell(manifest, "test_data_answers", "Tests of data_answers."),
        markdown("### 1.3 A dense network\n\nWrite `Dense`."),
        solution("dense", code["dense"]),
        visible_test(
            "dense",
            """
            _out = Dense()(torch.randn(5, 3, 32, 32))
            assert _out.shape == (5, 10), f"expected (5, 10), got {tuple(_out.shape)}"
            assert torch.allclose(_out.exp().sum(1), torch.ones(5)), "rows of exp must sum to 1"
            print("Dense: shape right, log-probabilities")
            """,
        ),
        grade_cell(manifest, "test_dense", "Tests of Dense."),
        markdown("**Question 1.3.** How many parameters does `Dense` have? The cell counts."),
        provided(
            "count_dense", "print(sum(p.numel() for p in Dense().parameters()), 'parameters')"
        ),
        markdown(
            """
            ### 1.4 Training and evaluation

            Write `train_epoch` and `evaluate`, which train and test every network of this
            notebook.
            """
        ),
        solution("loops", code["loops"]),
        visible_test(
            "loops",
            """
            _model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3), nn.LogSoftmax(dim=1))
            _data = torch.utils.data.TensorDataset(torch.randn(8, 3, 2, 2), torch.arange(8) % 3)
            _batches = torch.utils.data.DataLoader(_data, batch_size=4)
            _optimizer = torch.optim.SGD(_model.parameters(), lr=0.1)
            _loss = train_epoch(_model, _batches, _optimizer, "cpu")
            assert isinstance(_loss, float), f"train_epoch should return a float, got {_loss!r}"
            assert 0.0 <= evaluate(_model, _batches, "cpu") <= 1.0
            print("train_epoch and evaluate run")
            """,
        ),
        grade_cell(manifest, "test_loops", "Tests of train_epoch and evaluate."),
        grade_cell(manifest, "test_device", "Device placement in train_epoch and evaluate."),
        provided(
            "fit",
            """
            def fit(model, optimizer, epochs, criterion):
                \"\"\"Train for `epochs` epochs, printing the loss and the test accuracy.\"\"\"
                for epoch in range(epochs):
                    loss = train_epoch(model, train_loader, optimizer, device, criterion)
                    accuracy = evaluate(model, test_loader, device)
                    print(f"epoch {epoch + 1}: loss {loss:.4f}, test accuracy {accuracy:.4f}")
            """,
        ),
        markdown(
            f"""
            Train `Dense` for {config.EPOCHS} epochs with `nn.NLLLoss()` and Adam (learning
            rate {config.LR}). This takes a few minutes on a GPU; the cell saves
            `{dense.weights}`.
            """
        ),
        _training_cell("dense", "Dense", "nn.NLLLoss()"),
        markdown("**Question 1.4.** The dense network's test accuracy (two decimals):"),
        answer("answer_dense"),
        markdown(
            """
            ### 1.5 A convolutional network

            Write `CNN`, with its layers in the docstring's order: SiLU comes directly after
            each convolution, before its pooling. It returns logits since `nn.CrossEntropyLoss`
            applies log-softmax itself. Work out how many inputs the hidden layer gets from the
            shapes the layers produce.
            """
        ),
        solution("cnn", code["cnn"]),
        visible_test(
            "cnn",
            """
            _out = CNN()(torch.randn(5, 3, 32, 32))
            assert _out.shape == (5, 10), f"expected (5, 10), got {tuple(_out.shape)}"
            for _rows in (_out.sum(1), _out.exp().sum(1)):  # probabilities, log-probabilities
                assert not torch.allclose(_rows, torch.ones(5)), "return raw logits"
            print("CNN: shape right, logits")
            """,
        ),
        grade_cell(manifest, "test_cnn", "Tests of CNN."),
        markdown("**Question 1.5.** How many parameters does `CNN` have? The cell counts."),
        provided("count_cnn", "print(sum(p.numel() for p in CNN().parameters()), 'parameters')"),
        markdown(
            f"""
            ### 1.6 Train the CNN

            As the dense network, {config.EPOCHS} epochs of Adam (learning rate {config.LR}),
            but with `nn.CrossEntropyLoss()`, since the CNN returns logits. The cell saves
            `{cnn.weights}`.
            """
        ),
        _training_cell("cnn", "CNN", "nn.CrossEntropyLoss()"),
        markdown("**Question 1.6.** The CNN's test accuracy (two decimals):"),
        answer("answer_cnn"),
        markdown(
            f"""
            ### 1.7 and 1.8 A support vector machine

            An SVC's training time grows fast with the number of images, so it sees only the
            first {config.SVC_IMAGES:,} training images. Write `flatten_images` and `fit_svc`.

            The cell after them fits it on the training images with the deterministic test
            transform (random crops would only add noise here) and reports the test accuracy
            and the number of support vectors. It takes several minutes.
            """
        ),
        solution("svc", code["svc"]),
        grade_cell(manifest, "test_svc", "Tests of flatten_images and fit_svc."),
        provided(
            "train_svc",
            f"""
            if not GRADING:
                svc_train_set = CIFAR10(DATA_ROOT, train=True, transform=test_transform)
                svc = fit_svc(svc_train_set, n=min({config.SVC_IMAGES}, len(svc_train_set)))
                X_test, y_test = flatten_images(test_set, len(test_set))
                print(f"SVC: test accuracy {{svc.score(X_test, y_test):.2f}}, "
                      f"{{len(svc.support_)}} support vectors")
            """,
        ),
        markdown("**Questions 1.7 and 1.8.** The SVC's test accuracy and its support vectors:"),
        answer("answer_svc"),
        markdown(
            f"""
            ## Part 2: learning features

            Logistic regression is a network without hidden layers: one linear layer and a
            softmax. On the two-dimensional points of `{config.X_FILE}` and `{config.Y_FILE}`
            (handed out with this notebook) no straight line separates the classes.

            ### 2.1 Split, and logistic regression

            Write `split_data(X, y)`, with `train_test_split`, and `fit_logistic(X_train,
            y_train)`.
            """
        ),
        solution("part2", code["part2"]),
        grade_cell(manifest, "test_part2", "Tests of split_data and fit_logistic."),
        markdown("`plot_boundary` colours the plane by a model's predictions (question 2.2)."),
        provided("plot_boundary", code["plot_boundary"]),
        markdown(
            """
            ### 2.3 A deep classifier

            The sheet's `DeepClassifier` keeps its middle layers in a plain Python list.
            PyTorch does not look inside lists: those layers are not registered, so
            `model.parameters()` leaves them out (the optimiser never trains them) and
            `state_dict()` does not save them. Keep them in an `nn.ModuleList` instead; the
            rest is the sheet's code.
            """
        ),
        solution("deep", code["deep"]),
        visible_test(
            "deep",
            """
            _model = DeepClassifier(n_hidden=3, hidden_dim=5)
            assert _model(torch.randn(4, 2)).shape == (4, 2)
            _n = sum(p.numel() for p in _model.parameters())
            assert _n == (2 * 5 + 5) + 2 * (5 * 5 + 5) + (5 * 2 + 2), f"{_n} parameters"
            print("DeepClassifier: every layer registered")
            """,
        ),
        grade_cell(manifest, "test_deep", "Tests of DeepClassifier."),
        markdown(
            f"""
            ### 2.4 How wide?

            Write `smallest_width(accuracies, target={config.TARGET})`. The cell after it trains
            one model with a hidden layer per width in {widths} (width 2 answers question 2.3)
            and draws the decision boundaries.
            """
        ),
        solution("width", code["width"]),
        grade_cell(manifest, "test_width", "Tests of smallest_width."),
        provided(
            "train_part2",
            f"""
            if not GRADING:
                X, y = np.load("{config.X_FILE}"), np.load("{config.Y_FILE}")
                X_train, X_test, y_train, y_test = split_data(X, y)
                logistic = fit_logistic(X_train, y_train)
                print(f"logistic regression: test accuracy {{logistic.score(X_test, y_test):.3f}}")
                points = DataLoader(
                    TensorDataset(torch.tensor(X_train), torch.tensor(y_train)),
                    batch_size={config.BATCH_SIZE}, shuffle=True,
                )
                held_out = [(torch.tensor(X_test), torch.tensor(y_test))]
                models, accuracies = {{}}, {{}}
                for width in {widths}:
                    model = DeepClassifier(n_hidden=1, hidden_dim=width)
                    optimizer = torch.optim.Adam(model.parameters(), lr={config.LR})
                    for epoch in range({config.DEEP_EPOCHS}):
                        train_epoch(model, points, optimizer, "cpu")
                    models[width], accuracies[width] = model, evaluate(model, held_out, "cpu")
                    print(f"width {{width}}: test accuracy {{accuracies[width]:.3f}}")
                best = smallest_width(accuracies)
                print("smallest width reaching {config.TARGET}:", best)

                def predict(model):
                    return lambda grid: model(torch.tensor(grid)).argmax(1).numpy()

                fig, axes = plt.subplots(1, 3, figsize=(13, 4))
                plot_boundary(logistic.predict, X, y, axes[0], "logistic regression")
                plot_boundary(predict(models[2].eval()), X, y, axes[1], "width 2")
                if best is not None:
                    plot_boundary(predict(models[best].eval()), X, y, axes[2], f"width {{best}}")
                plt.show()
            """,
        ),
        markdown(
            "**Questions 2.1, 2.3 and 2.4.** Logistic regression's test accuracy and the width-2"
            " classifier's (three decimals), and the smallest width reaching 0.99:"
        ),
        answer("answer_part2"),
        grade_cell(
            manifest, "test_accuracy", "Accuracy of your submitted weights on the test set."
        ),
        *before_you_submit(
            manifest,
            "the training, SVM and part 2 cells load your weights files or skip, a minute or two",
        ),
    ]
