"""Does the leaderboard rank by measured accuracy, break ties the same way every time, and
leave out what measured nothing?"""

from __future__ import annotations

import random

from grader.leaderboard import (
    accuracy_checks,
    chart_figure,
    format_leaderboard,
    measured_accuracy,
    rank,
)
from tests.fixtures.reports import accuracy, check, report


def _two_model_class():
    return [
        report("ann", [accuracy("resmlp_accuracy", 0.88), accuracy("densenet_accuracy", 0.92)]),
        report("bob", [accuracy("resmlp_accuracy", 0.91), accuracy("densenet_accuracy", 0.93)]),
        report("cid", [accuracy("resmlp_accuracy", 0.86), accuracy("densenet_accuracy", 0.86)]),
    ]


def test_does_it_read_the_value_before_the_message():
    assert measured_accuracy(accuracy("a_accuracy", 0.9012)) == 0.9012
    assert measured_accuracy(accuracy("a_accuracy", 0.8012)) == 0.8012  # below threshold
    assert measured_accuracy(accuracy("a_accuracy", 0.9123, in_value=True)) == 0.9123
    assert measured_accuracy(check("a_accuracy", message="test accuracy 90.5 %")) == 0.905
    assert measured_accuracy(check("a_accuracy", message="weights file missing")) is None


def test_are_checks_that_measure_no_test_accuracy_left_out():
    reports = [
        report(
            "ann",
            [
                check("evaluate_accuracy", message="evaluate returns correct / total"),
                accuracy("resmlp_accuracy", 0.9),
                check("resmlp_output"),
            ],
        )
    ]
    assert accuracy_checks(reports) == ["resmlp_accuracy"]


def test_does_it_rank_by_the_mean_of_several_accuracy_checks():
    board = rank(_two_model_class())
    assert board.checks == ("resmlp_accuracy", "densenet_accuracy")
    assert [e.student for e in board.entries] == ["bob", "ann", "cid"]
    assert board.entries[0].accuracy == round((0.91 + 0.93) / 2, 6)


def test_are_ties_broken_by_total_score_then_by_name_whatever_the_order_read():
    reports = [
        report("zoe", [accuracy("mlp_accuracy", 0.9), check("x")]),
        report("amy", [accuracy("mlp_accuracy", 0.9), check("x", False)]),
        report("bea", [accuracy("mlp_accuracy", 0.9), check("x", False)]),
        # the same accuracy as a value, not in the message: it must tie too
        report("cal", [accuracy("mlp_accuracy", 0.9, in_value=True), check("x", False)]),
        report("dee", [accuracy("mlp_accuracy", 0.95)]),
    ]
    expected = ["dee", "zoe", "amy", "bea", "cal"]
    for seed in range(5):
        random.Random(seed).shuffle(reports)
        assert [e.student for e in rank(reports).entries] == expected
    text = format_leaderboard(rank(reports), top=3)
    assert "tie with amy broken by total score" in text
    assert "tie with bea broken by name" in text


def test_does_a_missing_measurement_count_as_zero_and_say_so():
    reports = _two_model_class() + [
        report(
            "dan",
            [
                accuracy("resmlp_accuracy", 0.99),
                check("densenet_accuracy", status="error", message="densenet.pt is missing"),
            ],
        ),
        report("eve", [check("resmlp_accuracy", status="error", message="no weights")]),
    ]
    board = rank(reports)
    dan = next(e for e in board.entries if e.student == "dan")
    assert dan.accuracy == round(0.99 / 2, 6) and dan.incomplete
    assert board.unmeasured == ("eve",)
    text = format_leaderboard(board, top=10)
    assert "a missing measurement counts as 0" in text and "no measured accuracy: eve" in text


def test_are_reports_that_are_not_final_left_out_and_named():
    reports = _two_model_class()
    reports[1].status = "review"
    board = rank(reports)
    assert [e.student for e in board.entries] == ["ann", "cid"] and board.not_final == ("bob",)
    assert "not final (review or incomplete): bob" in format_leaderboard(board)


def test_does_the_text_show_the_top_n_only_and_fit_100_columns():
    text = format_leaderboard(rank(_two_model_class()), top=2)
    assert "bob" in text and "ann" in text and "cid" not in text
    assert all(len(line) <= 100 for line in text.splitlines())


def test_does_an_explicit_check_choice_override_the_default():
    board = rank(_two_model_class(), checks=["densenet_accuracy"])
    assert board.checks == ("densenet_accuracy",)
    assert [e.student for e in board.entries] == ["bob", "ann", "cid"]
    assert board.entries[1].accuracy == 0.92


def test_does_the_chart_show_every_ranked_student_best_on_top():
    figure = chart_figure(rank(_two_model_class()), top=1)
    ax = figure.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[-1] == "1. bob" and len(ax.patches) == 3  # barh: the last label is on top
    assert "res_dense_nets" in ax.get_title() and "3 students" in ax.get_title()


def test_does_the_chart_s_axis_start_at_zero():
    """An axis from the lowest accuracy (0.41 for one class) made small differences look
    large; bars measured from 0 keep them in proportion."""
    ax = chart_figure(rank(_two_model_class())).axes[0]
    low, high = ax.get_xlim()
    assert low == 0.0 and high >= 1.0
