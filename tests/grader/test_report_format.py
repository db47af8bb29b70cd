"""Do reports read old and new JSON alike, does the table wrap without losing a word, and does
a report print as inert text whatever its file holds?"""

from __future__ import annotations

import csv
import io
import json

from grader.leaderboard import format_leaderboard, rank
from grader.report import CheckResult, Report, class_csv, format_table, wrap_text
from grader.summary import format_summary
from grader.text import inert_line
from tests.fixtures.hostile import CONTROL_NAME, HOSTILE_TEXT, TERMINAL_CONTROL
from tests.fixtures.reports import accuracy, check, report

LONG = (
    "DenseBlock(4, 3, 12) returned 40 channels for the first layer's input; the reference "
    "concatenates the block input with every earlier layer's output, so layer 2 sees 16 "
    "channels and layer 3 sees 28: see /content/drive/MyDrive/a_very_long_folder_name/x.ipynb"
)


def _sample() -> Report:
    return report(
        "alice",
        [check("resblock_is_module"), check("denseblock_concatenates", False, message=LONG)],
        notes=["first line of a note\n  Traceback (most recent call last):\n  a second line"],
    )


def test_does_a_report_written_before_values_and_status_still_read():
    old = {
        "assignment": "res_dense_nets",
        "student": "bob",
        "score": 2,
        "max_score": 2,
        "checks": [{"name": "a", "points": 2, "max_points": 2, "status": "pass", "message": "ok"}],
        "duration_s": 1.5,
    }
    read = Report.from_dict(old)
    assert read.status == "graded" and read.checks[0].value is None
    assert "value" not in read.to_dict()["checks"][0]


def test_does_a_report_keep_check_values_and_its_status_and_skip_unknown_keys():
    original = report("carol", [accuracy("resmlp_accuracy", 0.9012, in_value=True)])
    original.status = "reused"
    data = json.loads(original.to_json())
    assert data["status"] == "reused" and data["checks"][0]["value"] == 0.9012
    data["checks"][0]["future_field"] = "from a later grader"
    data["another_future_field"] = 1
    again = Report.from_dict(data)
    assert again.status == "reused" and again.checks[0].value == 0.9012


def test_does_the_default_table_still_cut_long_messages_and_show_a_notes_first_line():
    table = format_table(_sample())
    assert all(len(line) <= 100 for line in table.splitlines())
    row = next(line for line in table.splitlines() if line.startswith("denseblock_concat"))
    assert row.endswith("...") and LONG[:40] in row
    assert table.splitlines()[-1] == "note: first line of a note"
    assert "Traceback" not in table


def test_does_the_wrapped_table_keep_every_word_within_the_width():
    for width in (120, 80, 50):
        table = format_table(_sample(), width=width, wrap=True)
        lines = table.splitlines()
        assert all(len(line) <= width for line in lines), width
        # the message: the rest of its check's row, then the indented lines under it
        first = next(i for i, line in enumerate(lines) if line.startswith("denseblock_concat"))
        text = lines[first].split(" fail", 1)[1]
        for line in lines[first + 1 :]:
            if not line.startswith(" "):
                break
            text += line
        assert "".join(text.split()) == "".join(LONG.split()), width  # nothing lost or added
        assert "Traceback (most recent call last):" in table
        assert "a second line" in table


def test_does_wrap_text_keep_line_breaks_and_indents():
    lines = wrap_text("one two three four five\n    indented line that is long", 14)
    assert lines[0] == "one two three" and lines[1] == "four five"
    assert all(line.startswith("    ") for line in lines[2:]) and len(lines) > 3
    assert all(len(line) <= 14 for line in lines)


def test_can_a_student_name_not_become_a_spreadsheet_formula():
    row = class_csv([report("=HYPERLINK(1)", [check("resblock_is_module")])]).splitlines()[1]
    assert row.startswith("'=HYPERLINK(1)")


def _tampered() -> dict:
    """A saved report edited by hand (or by an older grader): control sequences everywhere."""
    data = report("ann", [accuracy("resmlp_accuracy", 0.9)]).to_dict()
    data["student"] = CONTROL_NAME
    data["notes"] = [f"a note {HOSTILE_TEXT}"]
    data["sandbox"] = HOSTILE_TEXT
    data["status"] = "review"
    data["checks"][0]["message"] += f" {HOSTILE_TEXT}\nresmlp_accuracy  3/3  pass"
    return data


def test_does_a_tampered_report_print_inert_in_every_table_and_the_csv():
    tampered = Report.from_dict(_tampered())
    assert Report.from_dict(json.loads(tampered.to_json())).to_dict() == tampered.to_dict()
    board_reports = [Report.from_dict({**_tampered(), "status": "graded"})]
    outputs = {
        "table": format_table(tampered),
        "wrapped table": format_table(tampered, width=60, wrap=True),
        "summary": format_summary([tampered]),
        "leaderboard": format_leaderboard(rank(board_reports)),
        "csv": class_csv([tampered]).replace("\r\n", "\n"),  # the CSV's own line ends
    }
    for what, text in outputs.items():
        assert not TERMINAL_CONTROL.search(text), (what, TERMINAL_CONTROL.findall(text))
        rows = [line for line in text.splitlines() if line.startswith("resmlp_accuracy")]
        assert len(rows) <= 1, (what, rows)  # a message's line break starts no row
    assert "\\x1b]52;c;" in outputs["wrapped table"] and "\\u202e" in outputs["wrapped table"]
    assert inert_line(CONTROL_NAME) in outputs["summary"] + outputs["leaderboard"]
    assert outputs["csv"].splitlines()[1].startswith("'=eve\\x1b]0;pwned")


def _thirds() -> Report:
    """Points of a partly passed check: 2/3 of 62 is 41.3333..."""
    partial = CheckResult("densenet_behaviour", 62 * 2 / 3, 62.0, "fail", "2 of 3 settings")
    return report("dora", [check("resblock_is_module"), partial])


def test_are_fractional_points_shown_with_2_decimals_in_aligned_columns():
    table = format_table(_thirds())
    assert "41.33/62" in table and "41.3333" not in table
    rows = [line for line in table.splitlines() if "/" in line and "  " in line]
    assert len({row.index("/") for row in rows}) == 1, table  # the slashes line up
    (row,) = csv.DictReader(io.StringIO(class_csv([_thirds()])))
    assert (row["densenet_behaviour"], row["score"]) == ("41.33", "43.33")


def test_does_the_csv_say_status_lateness_and_data_and_leave_no_score_that_is_not_final():
    final = report("eli", [check("resblock_is_module")], data="stand-ins", seconds_late=61.0)
    pending = report(
        "fin", [check("resblock_is_module")], status="review", reason="the probe was killed"
    )
    rows = {r["student"]: r for r in csv.DictReader(io.StringIO(class_csv([final, pending])))}
    assert (rows["eli"]["status"], rows["eli"]["score"], rows["eli"]["data"]) == (
        "graded",
        "2",
        "stand-ins",
    )
    assert rows["eli"]["seconds_late"] == "61" and rows["eli"]["late_penalty"] == "0"
    assert (rows["fin"]["status"], rows["fin"]["reason"]) == ("review", "the probe was killed")
    assert rows["fin"]["score"] == rows["fin"]["resblock_is_module"] == ""
