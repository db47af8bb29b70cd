"""Figures of `mlp_tuning` for people: the search (Optuna's own matplotlib plots) and ten test
images with predicted and true classes (the learning curves: `solutions.plots`)."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
import optuna  # noqa: E402
import torch  # noqa: E402

from solutions.plots import save  # noqa: E402


def _title(text: str, quick: bool) -> str:
    return f"{text} (quick run: code paths only)" if quick else text


def _retitle(ax, text: str) -> None:
    """Replace Optuna's own title (set on the left of the axes) by `text`."""
    for loc in ("left", "right"):
        ax.set_title("", loc=loc)
    ax.set_title(text)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    save(fig, path)
    plt.close(fig)
    return path


def search_figures(url: str, studies: list[str], out_dir: Path, *, quick: bool) -> list[Path]:
    """Parallel coordinates and hyper-parameter importances of the coarse stage (the widest
    space, the most trials), and every trial's validation accuracy by stage."""
    coarse = optuna.load_study(study_name=studies[0], storage=url)
    paths = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", UserWarning)  # flat axes of one-choice parameters
        ax = optuna.visualization.matplotlib.plot_parallel_coordinate(coarse)
        ax.figure.set_size_inches(14, 5)
        _retitle(ax, _title("Coarse stage: parallel coordinates (validation accuracy)", quick))
        paths.append(_save(ax.figure, out_dir / "search_parallel_coordinates.png"))
        complete = [t for t in coarse.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if len(complete) >= 2:
            ax = optuna.visualization.matplotlib.plot_param_importances(
                coarse, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0)
            )
            ax.figure.set_size_inches(8, 4.5)
            _retitle(ax, _title("Coarse stage: hyper-parameter importance (fANOVA)", quick))
            paths.append(_save(ax.figure, out_dir / "search_importances.png"))
    paths.append(stage_history(url, studies, out_dir / "search_stages.png", quick=quick))
    return paths


def stage_history(url: str, studies: list[str], path: Path, *, quick: bool) -> Path:
    """Validation accuracy of every trial, in order, coloured by stage; pruned trials hollow at
    the last value they reported."""
    fig, ax = plt.subplots(figsize=(9, 4))
    x = 0
    for index, (name, colour) in enumerate(zip(studies, plt.cm.tab10.colors, strict=False)):
        study = optuna.load_study(study_name=name, storage=url)
        epochs = study.user_attrs.get("stage", {}).get("epochs", "?")
        done, pruned = [], []
        for trial in study.trials:
            x += 1
            if trial.state == optuna.trial.TrialState.COMPLETE:
                done.append((x, trial.value))
            elif trial.state == optuna.trial.TrialState.PRUNED and trial.intermediate_values:
                last = trial.intermediate_values[max(trial.intermediate_values)]
                pruned.append((x, last))
        label = f"stage {index + 1} ({epochs} epoch{'s' if epochs != 1 else ''})"
        if done:
            ax.scatter(*zip(*done, strict=True), color=colour, label=label)
        if pruned:
            ax.scatter(
                *zip(*pruned, strict=True),
                facecolors="none",
                edgecolors=colour,
                label=f"stage {index + 1} pruned",
            )
    ax.set(xlabel="trial (in the order run)", ylabel="validation accuracy", ylim=(0, 1))
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(_title("Search stages, coarse to fine", quick))
    return _save(fig, path)


def predictions(images: torch.Tensor, labels, predicted, classes, path: Path, title: str):
    """Ten test images (uint8 or 0..1, (10, 1, 28, 28)) with predicted and true class names;
    wrong predictions in red."""
    fig, axes = plt.subplots(2, 5, figsize=(11, 6.2))
    for ax, image, label, guess in zip(axes.flat, images, labels, predicted, strict=False):
        ax.imshow(image.squeeze(0).cpu(), cmap="gray")
        ax.set_title(
            f"predicted: {classes[guess]}\ntrue: {classes[label]}",
            fontsize=9,
            color="black" if guess == label else "red",
        )
        ax.axis("off")
    fig.suptitle(f"{title}\nfinal model on 10 random test images")
    return _save(fig, path)
