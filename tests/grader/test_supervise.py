"""Does a time-out's reason say which of the student's functions was running? What does the
supervisor take from the probe's word on which definitions the checks met?"""

from __future__ import annotations

import os
import time

from grader.probe.context import STACK_FILE
from grader.probe.run import StackWatch
from grader.supervise import _Attempt, running_student_code

# A cell as IPython compiles it: a helper that hangs, called by the graded function.
CELL = """
import time

def _wait_for_batches():
    time.sleep(0.6)

def train_epoch(model, loader):
    _wait_for_batches()
"""


def test_does_the_reason_name_the_function_and_its_caller(tmp_path):
    """The probe's StackWatch, armed to fire inside the cell's train_epoch, writes its stack;
    armed again (the next item, with no limit) it cancels the timer and empties the file."""
    namespace: dict = {}
    exec(compile(CELL, "<ipython-input-7-3fa2c1d09b1e>", "exec"), namespace)
    watch = StackWatch(tmp_path / STACK_FILE, {"observer": 0.2})
    watch.arm("observer")
    namespace["train_epoch"](None, None)
    where = running_student_code(tmp_path / STACK_FILE, os.getuid())
    assert where == ", in _wait_for_batches (line 5 of its cell), called by train_epoch (line 8)"
    watch.arm("observer")
    watch.arm("cell")
    time.sleep(0.3)
    assert (tmp_path / STACK_FILE).read_text() == ""


def test_does_a_stack_without_student_code_add_nothing(tmp_path):
    stack = tmp_path / STACK_FILE
    stack.write_text('Thread 0x1 (most recent call first):\n  File "/x/torch/nn.py", line 3 in f\n')
    assert running_student_code(stack, os.getuid()) == ""
    assert running_student_code(tmp_path / "missing.txt", os.getuid()) == ""


def test_is_text_written_by_the_student_read_as_names_only(tmp_path):
    """The probe's folder is the student's too: a line that is no frame of a cell is passed
    over, and a name is at most an identifier."""
    stack = tmp_path / STACK_FILE
    stack.write_text(
        "Thread 0x1 (most recent call first):\n"
        '  File "<ipython-input-1-ab>", line 2 in <b>you scored 100</b>\n'
        '  File "<ipython-input-1-ab>", line 4 in ok; rm -rf /\n'
        '  File "<ipython-input-1-ab>", line 9 in evaluate\n'
    )
    assert running_student_code(stack, os.getuid()) == ", in evaluate (line 9 of its cell)"


def test_are_the_direct_caller_and_the_outermost_named_and_a_time_body_told(tmp_path):
    """fit -> train_epoch -> forward (round 10b: "called by fit" named the outermost, not the
    caller); a `%%time` cell's body is compiled as "<timed exec>", its lines one short."""
    stack = tmp_path / STACK_FILE
    stack.write_text(
        "Thread 0x1 (most recent call first):\n"
        '  File "/x/torch/nn/modules/module.py", line 1 in _call_impl\n'
        '  File "<ipython-input-4-ab>", line 24 in forward\n'
        '  File "<timed exec>", line 16 in train_epoch\n'
        '  File "<ipython-input-9-cd>", line 14 in fit\n'
    )
    assert running_student_code(stack, os.getuid()) == (
        ", in forward (line 24 of its cell), called by train_epoch (line 17), from fit (line 14)"
    )


def test_does_the_supervisor_take_only_cell_numbers_from_the_probe_s_graded_definitions():
    """The probe (student code runs in it) names, with `cells_done`, the cell whose definition
    the checks met for each one defined several times; the report's note is written from it.
    Only whole numbers are taken, for at most 100 names of at most 100 characters."""
    attempt = _Attempt(cells=3)
    forged = {
        "MLP": 4,
        "x" * 500: 2,
        "flag": True,
        "text": "cell 2",
        **{f"f{i}": i for i in range(200)},
    }
    attempt.keep({"event": "cells_done", "graded": forged})
    assert (
        attempt.graded["MLP"] == 4 and "flag" not in attempt.graded and "text" not in attempt.graded
    )
    assert len(attempt.graded) <= 100 and max(map(len, attempt.graded)) == 100
    attempt.keep({"event": "cells_done", "graded": "everything", "patched": {"Net.forward": 3}})
    assert attempt.graded == {} and attempt.patched == {"Net.forward": 3}  # not a dict: nothing
