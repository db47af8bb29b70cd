"""Exits, crashes, hangs and limits; privileges, links and the zygote's pipe."""

from __future__ import annotations

import time

import pytest

from tests.grader.hostile.run import (
    BYSTANDERS,
    CELL_TIMEOUT_S,
    CONCURRENT,
    assert_full_marks,
    assert_note,
)

# Run alone (Makefile's `test`): the hostile batch: 10 s cell limits.
pytestmark = pytest.mark.serial

# -------------------------------------------------------------- exits, crashes, hangs, limits


@pytest.mark.parametrize("name", ["sys_exit", "exit_builtin"])
def test_is_exiting_between_model_cells_harmless(graded, name):
    """IPython turns these into an error of that cell; the rest of the notebook runs."""
    assert_full_marks(graded.report(name))


def test_is_os_exit_between_model_cells_skipped_and_the_rest_graded(graded):
    report = graded.report("os_exit")
    assert_full_marks(report)
    assert_note(report, "stopped the probe", "exited early", "graded with its definitions alone")


def test_is_a_self_sigkill_between_model_cells_skipped_and_the_rest_graded(graded):
    """Graded twice (a SIGKILL may be the OOM killer's), full marks both times, and marked for
    review: a student can make the instructor look, not change a grade."""
    report = graded.report("sigkill_self")
    assert_full_marks(report)
    assert_note(
        report, "stopped the probe", "SIGKILL", "graded with its definitions alone", "graded twice"
    )


def test_is_an_endless_cell_skipped_after_the_cell_timeout(graded):
    report = graded.report("infinite_loop")
    assert_full_marks(report)
    assert_note(report, "stopped the probe", f"longer than {CELL_TIMEOUT_S} s", "graded without it")
    # The cell's first line of code finds it in a notebook that shows no cell numbers (Colab).
    assert_note(report, "(`while True:`) stopped the probe")


def test_does_an_endless_call_keep_the_definitions_of_its_cell(graded):
    """A call that never ends at the top of the cell defining ResBlock (as a training run left
    under a student's functions): the function that hung is named, and the cell runs again
    with its definitions alone, so ResBlock is graded (full marks)."""
    report = graded.report("sigint_ignoring_loop")
    assert_full_marks(report)
    assert_note(
        report,
        f"(`import signal, time`) stopped the probe (it ran longer than {CELL_TIMEOUT_S} s, in "
        "wait_forever (line ",
        "graded with its definitions alone",
    )


def test_is_a_memory_bomb_contained(graded):
    assert_full_marks(graded.report("memory_bomb"))


def test_is_a_fork_bomb_contained_and_cleaned_up(graded):
    """The process limit stops the bomb, the cell timeout stops its cell, the grading goes on
    without that cell (full marks), and none of its processes is left."""
    assert graded.leftovers["fork bomb"] == []
    assert_full_marks(graded.report("fork_bomb"))


@pytest.mark.parametrize("name", BYSTANDERS)
def test_are_the_submissions_graded_beside_a_fork_bomb_unharmed(graded, name):
    """One student's fork bomb must not cost another student points, whenever their grading
    starts: with the bomb's, while it runs, or while its processes are being killed."""
    assert_full_marks(graded.report(name))


@pytest.mark.parametrize("name", CONCURRENT)
def test_does_a_second_grading_run_at_the_same_time_get_full_marks(graded, name):
    """Two runs on one machine (the fork bomb's, and one of reference copies): disjoint probe
    uids, so neither kills the other's probes while reaping its own."""
    assert sorted(graded.concurrent) == CONCURRENT
    assert_full_marks(graded.concurrent[name])


def test_do_background_processes_die_with_the_grading(graded):
    assert_full_marks(graded.report("background_processes"))
    assert graded.leftovers["daemon"] == [] and graded.leftovers["sleep"] == []
    markers = graded.targets.markers_for(
        "background_processes", graded.folder("background_processes")
    )
    time.sleep(1)  # a surviving daemon writes its markers every second
    assert [p for p in markers if p.exists()] == []


def test_is_a_fifty_megabyte_output_line_harmless(graded):
    assert_full_marks(graded.report("huge_output_line"))


def test_do_stderr_warnings_cost_no_points(graded):
    assert_full_marks(graded.report("stderr_warnings"))


# ---------------------------------------------- issue 7: privileges, links, the zygote's pipe


def test_can_a_probe_reach_neither_the_zygote_nor_root(graded):
    """Requests written to every other process's descriptors, links and FIFOs aimed at the
    zygote's request pipe where the host and the next attempt look: the next attempt still runs
    unprivileged (the ResBlock cell raises otherwise), and the rest is graded."""
    report = graded.report("zygote_requests")
    assert_full_marks(report)
    assert_note(report, "stopped the probe", "graded with")


def test_does_the_host_follow_no_link_a_probe_plants_before_a_retry(graded):
    """Links to a root-only file and tree planted in the probe's folders, which it then made
    0777 before dying: the host starts the retry in fresh folders and changes nothing."""
    report = graded.report("links_for_the_host")
    assert_full_marks(report)
    assert_note(report, "stopped the probe", "graded with")
    assert graded.victims_after == graded.victims_before
