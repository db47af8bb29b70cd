"""Does the class summary count, average and flag the way an instructor reads it?"""

from __future__ import annotations

import statistics

import matplotlib.image as mpimg

from grader.report import CheckResult
from grader.summary import checks_figure, format_summary, scores_figure, summarise, write_charts
from tests.fixtures.reports import accuracy, check, report

NAMES = ("resblock_is_module", "denseblock_concatenates", "train_mode")


def _class():
    """Five honest students, one reused, one whose grading failed, one awaiting review."""
    reports = [
        report("ann", [check(n) for n in NAMES] + [accuracy("resmlp_accuracy", 0.90)]),
        report("ben", [check(NAMES[0]), check(NAMES[1], False), check(NAMES[2])]),
        report("cat", [check(NAMES[0]), check(NAMES[1], False), check(NAMES[2], False)]),
        report("dan", [check(n) for n in NAMES], status="reused"),
        report(
            "eve",
            [check(n) for n in NAMES[:2]]
            + [check(NAMES[2], False, message="stopped while checking: it ran longer than 30 s")],
        ),
        report(
            "fay", [check(n, status="error", message="the notebook is not JSON") for n in NAMES]
        ),
        report(
            "gus",
            [check(n, False) for n in NAMES],
            status="review",
            notes=["the probe was killed from outside, twice"],
        ),
    ]
    return reports


def test_does_the_summary_count_graded_reused_failed_and_review():
    s = summarise(_class())
    assert (s.size, s.graded, s.reused, s.failed, s.review) == (7, 6, 1, 1, 1)


def test_are_the_statistics_those_of_the_final_totals_only():
    reports = _class()
    s = summarise(reports)
    final = [r.score for r in reports if r.student != "gus"]  # review is not a grade yet
    assert sorted(final) == list(s.totals)
    assert s.stat("mean") == statistics.fmean(final)
    assert s.stat("median") == statistics.median(final)
    assert s.stat("std") == statistics.pstdev(final)
    assert (s.stat("min"), s.stat("max")) == (min(final), max(final))


def test_are_check_pass_rates_worst_first():
    s = summarise(_class())
    rates = [c.rate for c in s.checks]
    assert rates == sorted(rates)
    by_name = {c.name: c for c in s.checks}
    # final reports: ann ben cat dan eve fay; denseblock_concatenates passed by ann dan eve
    assert (by_name[NAMES[1]].passed, by_name[NAMES[1]].total) == (3, 6)
    # a check only some reports have is rated over those reports
    assert by_name["resmlp_accuracy"].total == 1


def test_does_the_summary_flag_failures_time_outs_and_review():
    flagged = {f.student: f.kind for f in summarise(_class()).flagged}
    assert flagged == {"fay": "failed", "eve": "time-out", "gus": "review"}


def test_does_the_text_fit_100_columns_and_name_what_to_look_at():
    text = format_summary(_class())
    assert all(len(line) <= 100 for line in text.splitlines())
    assert "1 reused" in text and "1 failed" in text and "1 need review" in text
    for student in ("fay", "eve", "gus"):
        assert student in text
    assert "ben" not in text  # no per-student table
    assert "the probe was killed from outside" in text
    first_check = text.splitlines().index(
        next(line for line in text.splitlines() if line.startswith("check pass rates"))
    )
    assert NAMES[1] in text.splitlines()[first_check + 1]  # the worst check comes first


def test_does_an_empty_or_all_review_class_summarise_without_failing(tmp_path):
    gus = _class()[-1]
    assert "totals: none" in format_summary([gus])
    assert "students to look at: none" in format_summary([])
    assert all(p.is_file() for p in write_charts([gus], tmp_path))


def test_does_write_charts_draw_two_titled_images(tmp_path):
    paths = write_charts(_class(), tmp_path / "charts")
    assert [p.name for p in paths] == ["res_dense_nets-scores.png", "res_dense_nets-checks.png"]
    for path in paths:
        image = mpimg.imread(path)
        assert image.shape[0] > 200 and image.shape[1] > 600  # 8 inches at 120 dpi
        assert image.std() > 0.05  # not a blank canvas


def test_are_the_charts_titled_with_the_assignment_and_the_class_size():
    s = summarise(_class())
    for figure in (scores_figure(s), checks_figure(s)):
        title = figure.axes[0].get_title()
        assert "res_dense_nets" in title and "7 students" in title
    bars = checks_figure(s).axes[0].patches
    assert len(bars) == len(s.checks)


def test_are_checks_everyone_passed_folded_into_one_line():
    reports = [report(s, [check("easy"), check("hard", s == "ann")]) for s in ("ann", "ben")]
    text = format_summary(reports)
    assert "passed by everyone (1 check): easy" in text
    assert not any(line.lstrip().startswith("easy ") for line in text.splitlines())
    assert any(line.lstrip().startswith("hard ") for line in text.splitlines())


def test_does_a_narrow_terminal_keep_the_last_figure_of_every_line():
    """Lines cut at the terminal's width lost the figure at their end (the maximum total)."""
    reports = _class()
    text = format_summary(reports, width=60)
    assert all(len(line) <= 60 for line in text.splitlines())
    words = text.split()
    s = summarise(reports)
    assert f"max {s.stat('max'):g}" in " ".join(words), text
    assert "1 need review" in " ".join(words)


def test_is_a_check_not_charged_counted_as_passed_as_in_the_totals():
    """It kept its points in the totals, so the pass rate counts it as passed, and says so."""
    skipped = CheckResult("densenet_behaviour", 1.0, 1.0, "skipped", "not charged: ...")
    reports = [report("ann", [check("resblock_is_module"), skipped])]
    rates = {c.name: c.rate for c in summarise(reports).checks}
    assert rates["densenet_behaviour"] == 1.0
    missed = [report("bob", [check("resblock_is_module", False), skipped])]
    assert "not charged counts as passed" in format_summary(reports + missed)


def test_are_reports_that_are_not_final_left_out_with_the_reason():
    reports = _class() + [
        report("hal", [check(n) for n in NAMES], status="incomplete", reason="no MNIST test split")
    ]
    text = " ".join(format_summary(reports).split())
    assert "left out, not final: 1 incomplete, 1 review" in text
    flagged = {f.student: (f.kind, f.reason) for f in summarise(reports).flagged}
    assert flagged["hal"] == ("incomplete", "no MNIST test split")


def test_are_students_with_a_note_or_late_work_listed_to_look_at():
    renamed = report(
        "ida", [check(n) for n in NAMES], notes=["graded Copy of res_dense_nets.ipynb"]
    )
    late = report("joe", [check(n) for n in NAMES], seconds_late=90000.0, late_penalty=6.0)
    flagged = {f.student: (f.kind, f.reason) for f in summarise([renamed, late]).flagged}
    assert flagged == {
        "ida": ("note", "graded Copy of res_dense_nets.ipynb"),
        "joe": ("late", "1 d 1 h late, penalty 6"),
    }
    assert late.score == late.raw_score - 6
