"""Do `python -m grader show`, `leaderboard` and `normalise-names` work on a saved class, and do
operator mistakes end in one line and exit status 2?

Most run `grader.cli.main` in-process (the commands read files and grade nothing); one test per
command runs the real CLI as an operator would.
"""

from __future__ import annotations

import matplotlib.image as mpimg
import pytest

from grader.cli import main
from tests.conftest import REPO, run_cli
from tests.fixtures.reports import ID, accuracy, check, report, save_course

LONG = " ".join(f"word{i:03d}" for i in range(60))  # 479 characters, no natural end


@pytest.fixture
def course(tmp_path):
    return save_course(
        tmp_path / "course",
        [
            report(
                "alice",
                [check("resblock_is_module"), check("resblock_skip", False, message=LONG)],
                notes=["the probe stopped between two steps\nsecond line of the note"],
            ),
            report("bob", [accuracy("resmlp_accuracy", 0.91), check("resblock_skip")]),
            report("carl", [accuracy("resmlp_accuracy", 0.93), check("resblock_skip", False)]),
            report("dora", [check("plot_drawn")], assignment="other_hw"),
        ],
    )


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_does_show_print_every_word_of_long_messages_and_notes(course, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "72")
    code, out, err = _run(capsys, "show", "alice", "--assignment", ID, "--course", str(course))
    assert code == 0, err
    assert all(len(line) <= 72 for line in out.splitlines())
    words = out.split()
    assert all(f"word{i:03d}" in words for i in range(60))
    assert "second line of the note" in out and "report.json" in out


def test_does_show_guess_the_assignment_when_the_student_has_one(course, capsys):
    code, out, _ = _run(capsys, "show", "bob", "--course", str(course))
    assert code == 0 and "test accuracy 0.9100" in out


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["show", "alcie", "--assignment", ID], "no graded student 'alcie'"),
        (["show", "alice", "--assignment", "res_dense_net"], "unknown assignment 'res_dense_net'"),
        (["show", "alice", "--assignment", "other_hw"], "'alice' has no graded other_hw"),
    ],
)
def test_does_show_explain_an_unknown_student_or_assignment(course, capsys, argv, says):
    code, out, err = _run(capsys, *argv, "--course", str(course))
    assert code == 2 and out == ""
    assert err.startswith("error: ") and says in err and len(err.strip().splitlines()) == 1


def test_does_student_before_the_path_say_what_to_do(capsys):
    """`--student bob submitted/` takes submitted/ for a second student's name."""
    with pytest.raises(SystemExit) as exited:
        main(["grade", "--student", "bob", "submitted/"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "put PATH first" in err and len(err.splitlines()) == 1


def test_does_a_gradebook_url_without_its_driver_say_what_to_install(capsys, tmp_path):
    """A database whose driver is missing (MySQL here) is refused before grading, in one line:
    grading ran, then ended in a traceback."""
    code, _, err = _run(capsys, "grade", str(tmp_path), "--gradebook", "mysql://u@h/db")
    assert code == 2 and "--gradebook" in err and len(err.splitlines()) == 1


def test_does_show_explain_a_missing_report_or_course(course, capsys, tmp_path):
    (course / "autograded" / "alice" / ID / "report.json").unlink()
    code, _, err = _run(capsys, "show", "alice", "--assignment", ID, "--course", str(course))
    assert code == 2 and "report.json is missing" in err and len(err.splitlines()) == 1
    code, _, err = _run(capsys, "show", "alice", "--course", str(tmp_path / "nowhere"))
    assert code == 2 and "no autograded/ folder" in err


def test_does_leaderboard_rank_print_and_draw(course, capsys, tmp_path):
    png = tmp_path / "board.png"
    argv = ["leaderboard", ID, "--top", "1", "--course", str(course), "--png", str(png)]
    code, out, err = _run(capsys, *argv)
    assert code == 0, err
    assert "1.  carl" in out and "bob" not in out.split("ranked students")[1].split("wrote")[0]
    assert "not ranked, no measured accuracy: alice" in out
    assert mpimg.imread(png).std() > 0.05


def test_does_leaderboard_write_its_chart_into_the_course_by_default(course, capsys):
    code, out, _ = _run(capsys, "leaderboard", ID, "--course", str(course))
    assert code == 0 and (course / f"leaderboard-{ID}.png").is_file()


def test_does_leaderboard_say_clearly_when_there_is_nothing_to_rank(course, capsys, tmp_path):
    plain = save_course(tmp_path / "plain", [report("dora", [check("resblock_skip")])])
    cases = [
        (["leaderboard", ID, "--course", str(plain)], "has an accuracy check"),
        (["leaderboard", "fnn_mnist", "--course", str(course)], "no graded fnn_mnist reports"),
        (["leaderboard", ID, "--course", str(course), "--top", "0"], "--top must be 1"),
        (
            ["leaderboard", ID, "--course", str(course), "--png", str(tmp_path / "no/x.png")],
            "does not exist",
        ),
    ]
    for argv, says in cases:
        code, out, err = _run(capsys, *argv)
        assert code == 2 and says in err and len(err.strip().splitlines()) == 1, (argv, err)


def test_does_normalise_names_rename_copies_and_report_the_rest(tmp_path, capsys):
    submitted = tmp_path / "submitted"
    (submitted / "ann" / ID).mkdir(parents=True)
    (submitted / "ann" / ID / f"Copy of {ID}.ipynb").write_text("{}")
    (submitted / "ben" / ID).mkdir(parents=True)
    code, out, _ = _run(capsys, "normalise-names", str(submitted), "--dry-run")
    assert code == 0 and "would rename 1" in out and "ben: none" in out
    assert (submitted / "ann" / ID / f"Copy of {ID}.ipynb").is_file()
    code, out, _ = _run(capsys, "normalise-names", str(tmp_path), "--assignment", ID)
    assert code == 0 and (submitted / "ann" / ID / f"{ID}.ipynb").is_file()
    code, _, err = _run(capsys, "normalise-names", str(tmp_path / "nothing"))
    assert code == 2 and "is not a folder" in err


def test_do_the_real_commands_run_as_an_operator_types_them(course, tmp_path, monkeypatch):
    # run_cli passes the environment on; from a course folder `grader` must be this checkout's
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("COLUMNS", "90")
    show = run_cli("grader", "show", "alice", "--assignment", ID, cwd=course, timeout=120)
    monkeypatch.delenv("COLUMNS")
    assert show.returncode == 0, show.stderr
    assert all(len(line) <= 90 for line in show.stdout.splitlines())
    assert "word059" in show.stdout
    board = run_cli("grader", "leaderboard", ID, cwd=course, timeout=120)
    assert board.returncode == 0 and "1.  carl" in board.stdout, board.stderr
    missing = run_cli("grader", "show", "zed", "--course", str(course), timeout=120)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    (tmp_path / "submitted" / "ann" / ID).mkdir(parents=True)
    (tmp_path / "submitted" / "ann" / ID / f"{ID} (1).ipynb").write_text("{}")
    names = run_cli("grader", "normalise-names", "submitted", cwd=tmp_path, timeout=120)
    assert names.returncode == 0 and "renamed 1" in names.stdout, names.stderr
    helps = run_cli("grader", "leaderboard", "--help", timeout=120)
    assert "(default: 3)" in helps.stdout
