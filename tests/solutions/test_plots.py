"""Do reference figures say whether they are quick, and is a one-epoch curve visible?"""

from __future__ import annotations

import matplotlib.image as mpimg

from solutions.plots import learning_curves, learning_curves_figure, run_title
from solutions.training import History


def _history(epochs: int) -> History:
    return History(
        loss=[1.0 / (e + 1) for e in range(epochs)],
        train_accuracy=[0.5 + 0.04 * e for e in range(epochs)],
        test_accuracy=[0.48 + 0.04 * e for e in range(epochs)],
        seconds=[1.0] * epochs,
    )


def test_does_a_quick_title_say_it_is_not_the_reference():
    one = {"a": _history(1), "b": _history(1)}
    assert run_title("Nets", one, quick=False) == "Nets (reference)"
    quick = run_title("Nets", one, quick=True)
    assert "quick run: 1 epoch on a subset, not the reference" in quick
    assert "(reference)" not in quick
    assert "2 epochs" in run_title("Nets", {"a": _history(2)}, quick=True)


def test_is_a_one_epoch_curve_drawn_with_markers_inside_the_axes():
    figure = learning_curves_figure({"a": _history(1)}, "t")
    for ax in figure.axes:
        assert ax.lines and all(line.get_marker() not in (None, "None", "") for line in ax.lines)
        low, high = ax.get_xlim()
        assert low < 1 < high and list(ax.get_xticks()) == [1]


def test_are_long_runs_drawn_as_plain_lines():
    figure = learning_curves_figure({"a": _history(40)}, "t")
    assert all(line.get_marker() in (None, "None", "") for line in figure.axes[0].lines)


def test_is_the_png_of_a_one_epoch_run_not_blank(tmp_path):
    path = learning_curves({"a": _history(1)}, tmp_path / "deep" / "lc.png", "t (quick)")
    image = mpimg.imread(path)
    coloured = (abs(image[..., 0] - image[..., 2]) > 0.2).sum()  # the tab10 blue, not grey
    assert coloured > 30
