"""Does the answers family compare the student's answers with the reference's, whatever usual
form a size or a count is written in, and give a point share per answer?"""

from __future__ import annotations

import pytest

ANSWERED = {
    "as the reference writes them": '{"image_size": [28, 28], "block_parameters": 280}',
    "sizes as one number, counts as text": '{"image_size": 28, "block_parameters": "280"}',
    "sizes as text, counts as floats": '{"image_size": "28x28", "block_parameters": 280.0}',
    "counts as one-element shapes": '{"image_size": (28, 28), "block_parameters": (280,)}',
}


def _answers(harness, returned: str) -> dict:
    ns = harness.namespace(f"def answers():\n    return {returned}\n")
    return harness.grade(ns, ["answers"])["answers"]


def test_are_the_answers_the_reference_s(harness):
    # What the written answers above must equal: the reference computes them from its Block.
    assert harness.reference_ns["answers"]() == {"image_size": [28, 28], "block_parameters": 280}


@pytest.mark.parametrize("form", sorted(ANSWERED))
def test_are_answers_in_any_usual_form_right(harness, form):
    result = _answers(harness, ANSWERED[form])
    assert result.status == "pass", result.message


def test_does_a_wrong_answer_cost_its_share_and_say_which(harness):
    result = _answers(harness, '{"image_size": [28, 28], "block_parameters": 288}')
    assert result.points == result.max_points / 2
    assert "block_parameters: 288, expected 280" in result.message


def test_is_a_value_that_is_no_dict_refused(harness):
    result = _answers(harness, "[28, 28, 280]")
    assert result.points == 0 and "not a dict" in result.message
