"""Sections 6-8 of the `cnn_techniques` notebook (learning curves, t-SNE, activation
maximisation and the confusion matrix) and its submission cells."""

from __future__ import annotations

from grader.manifest import Manifest
from solutions.cnn_techniques import config
from solutions.notebook_builder import (
    Cell,
    answer,
    before_you_submit,
    grade_cell,
    markdown,
    provided,
    solution,
)


def curves(code: dict) -> list[Cell]:
    return [
        markdown(
            """
            ## 6. Learning curves

            Write `plot_learning_curves(histories)`: a figure for the training set and one for
            the test set, as its docstring says. The cell after it draws the four runs:
            baseline, augmentation, batch norm and fine-tuning.
            """
        ),
        solution("curves", code["curves"]),
        provided(
            "show_curves",
            f"""
            _runs = {{k: histories[k] for k in {config.CURVE_RUNS}}}
            plot_learning_curves(_runs)
            plt.show()
            for _name, _curve in _runs.items():
                print(f"{{_name:>10}}: best epoch {{_curve['best_epoch']:>2}}, "
                      f"test accuracy {{_curve['best_accuracy']:.4f}}")
            """,
        ),
        markdown(
            """
            **Question 6.** What do the curves show (compare training and test, and the runs
            with each other)? Which technique worked best for you, and by how much?
            """
        ),
        answer("answer_curves"),
    ]


def analysis(code: dict, manifest: Manifest) -> list[Cell]:
    n = config.TSNE_IMAGES
    return [
        markdown(
            f"""
            ## 7. t-SNE of the fc1 features

            t-SNE places high-dimensional points on a plane so that points that are close
            stay close. Use it on what the baseline network computes in `fc1`: 128 numbers per
            image. Write `fc1_features`, `tsne_points` and `plot_tsne` as their docstrings say.

            t-SNE of all 60,000 training images takes long; use the **first {n:,} training
            images** (indices 0 to {n - 1:,}), prepared with the test transform (no
            augmentation).
            """
        ),
        solution("tsne", code["tsne"]),
        grade_cell(manifest, "test_tsne", "Tests of fc1_features."),
        provided(
            "show_tsne",
            f"""
            if not GRADING:  # t-SNE takes minutes: not while grading
                _first = Subset(
                    datasets.FashionMNIST(DATA_ROOT, train=True, transform=test_transform),
                    range({n}),
                )
                _loader = DataLoader(_first, batch_size=1000)
                _features, _labels = fc1_features(baseline, _loader, device)
                plot_tsne(tsne_points(_features), _labels, train_set.classes)
                plt.show()
            """,
        ),
        markdown(
            """
            **Question 7.** What do you see in the map? Which classes mix, and how useful do
            the fc1 features look for telling the classes apart?
            """
        ),
        answer("answer_tsne"),
        markdown(
            """
            ## 8. What did the network learn?

            ### 8.1 Activation maximisation

            Which picture makes the network most sure of a class? Write
            `activation_maximisation` as its docstring says: **gradient ascent** on the pixels
            of an empty image. The image lives on the [0, 1]
            pixel scale and is normalised with `(image - mean) / std` before it enters the
            network; the penalty `decay * (image ** 2).sum()` keeps pixels dark where the class
            does not need them (with `decay=0` the images fill with bright stripes). Take the
            gradient with respect to the image only (`torch.autograd.grad`) and step the image
            with it, for instance with `torch.optim.Adam([image], lr=lr)` after setting
            `image.grad` to minus that gradient.

            Generate at least "T-shirt/top", "Trouser" and "Ankle boot" (the easiest), and
            try other classes too. The idea in full: https://distill.pub/2017/feature-visualization/
            """
        ),
        solution("dream", code["dream"]),
        grade_cell(manifest, "test_dream", "Tests of activation_maximisation."),
        markdown(
            """
            ### 8.2 The confusion matrix

            Write `confusion(model, loader, device)`: scikit-learn's `confusion_matrix` with
            **rows for the true classes**, as its docstring says. The cell below shows the
            generated images, each with its class's test accuracy (the diagonal over the row
            sum), beside the matrix.
            """
        ),
        solution("confusion", code["confusion"]),
        grade_cell(manifest, "test_confusion", "Tests of confusion."),
        provided(
            "show_dreams",
            """
            if not GRADING:
                _matrix = confusion(baseline, test_loader, device)
                _accuracy = _matrix.diagonal() / _matrix.sum(axis=1)
                _classes = train_set.classes
                _dreams = [activation_maximisation(baseline, c, MEAN[0], STD[0], device=device)
                           for c in range(len(_classes))]
                show_images(
                    [image for image, _ in _dreams],
                    [f"{name}\\naccuracy {acc:.2f}" for name, acc in zip(_classes, _accuracy)],
                )
                plt.show()
                plot_confusion(_matrix, _classes)
                plt.show()
            """,
        ),
        markdown(
            """
            **Question 8.** Does the test accuracy of a class go together with how
            recognisable its generated image is? Which classes are confused with which?
            """
        ),
        answer("answer_dreams"),
    ]


def submit(manifest: Manifest) -> list[Cell]:
    return [
        grade_cell(
            manifest, "test_accuracy", "Accuracy of your submitted weights on the test split."
        ),
        *before_you_submit(manifest, "the training cells load your weights files, a few minutes"),
    ]
