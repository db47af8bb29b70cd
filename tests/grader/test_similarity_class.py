"""`python -m grader similarity` on a class of every assignment, through the real command line.

The class (`tests.fixtures.disguise.class_of`): the reference; the release handed in untouched;
the reference disguised (renamed, cells and functions reordered, comments rewritten, calls
re-wrapped, and all at once); every variant of `tests/fixtures/variants/<id>.py` as handed in;
and each correct variant's own code alone, written independently of the reference.
"""

from __future__ import annotations

import csv
import itertools
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from grader.manifest import load_manifest
from grader.similarity.cli import DEFAULT_THRESHOLD
from grader.similarity.report_html import MAX_PAIRS
from tests.conftest import run_cli
from tests.fixtures.disguise import COPIES, class_of, write_class
from tests.fixtures.variants import known, variants_of

ASSIGNMENTS = known()

# Correct variants whose code is the reference's own cells edited, not written independently:
# the command must find them (they are copies), so they are left out of the independence test.
# They are the variants with `edited` cells, and these, written whole from the reference's:
WHOLE_BUT_FROM_THE_REFERENCE = {
    ("res_dense_nets", "colab_magics"): "the reference's training cells with magic lines added",
}
# ...but not these, whose edits replace whole functions by code of their own (the command
# measures them below its threshold, as code written independently):
REWRITTEN_IN_AN_EDIT = {
    ("cnn_techniques", "sgd_ascent_from_mean"): "activation maximisation by plain gradient steps "
    "on the normalised input, where the reference runs Adam on the image",
    ("fnn_mnist", "named_layers_and_apply"): "FNN and DeepFNN rewritten with named layers and a "
    "ModuleList, init_weights through model.apply, its own counting and penalties",
    ("fnn_mnist", "random_split_loaders"): "make_loaders through random_split and "
    "transforms.Lambda, mean_std summing over a DataLoader",
    ("cifar_cnn_svm", "other_readings"): "its own transforms, flattening, SVC, split, loops and "
    "evaluation beside a few reference cells",
    ("cifar_cnn_svm", "class_to_idx_and_loader"): "data_answers' solution is four lines; the "
    "edit rewrites the longest of them into two of its own",
    ("cifar_cnn_svm", "numpy_width_sequential_between"): "smallest_width written whole, one "
    "line of DeepClassifier edited",
}


def edited_from_the_reference(assignment: str) -> list[str]:
    """Correct variants of `assignment` that were not written independently of the reference."""
    return [
        name
        for name, v in variants_of(assignment).items()
        if v.correct
        and (v.edited or (assignment, name) in WHOLE_BUT_FROM_THE_REFERENCE)
        and (assignment, name) not in REWRITTEN_IN_AN_EDIT
    ]


class Compared:
    """One class compared by the CLI: its output, CSV (both ways) and HTML report."""

    def __init__(self, assignment: str, root: Path):
        self.assignment = assignment
        self.students = class_of(load_manifest(assignment))
        write_class(root, assignment, self.students)
        self.csv, self.html = root / "pairs.csv", root / "report.html"
        self.result = run_cli(
            "grader",
            "similarity",
            str(root / "submitted"),
            "--csv",
            str(self.csv),
            "--html",
            str(self.html),
            "--top",
            "5",
        )
        assert self.result.returncode == 0, self.result.stderr[-3000:]
        self.pairs: dict[tuple[str, str], tuple[float, float]] = {}
        with self.csv.open(newline="") as file:
            for row in csv.DictReader(file):
                a, b = row["student_a"], row["student_b"]
                ab, ba = float(row["a_in_b_percent"]), float(row["b_in_a_percent"])
                self.pairs[(a, b)], self.pairs[(b, a)] = (ab, ba), (ba, ab)

    def best(self, a: str, b: str) -> float:
        """The larger share of the pair in percent (0 when it shares nothing)."""
        return max(self.pairs.get((a, b), (0.0, 0.0)))


@pytest.fixture(scope="module", params=ASSIGNMENTS)
def compared(request, tmp_path_factory) -> Compared:
    return Compared(request.param, tmp_path_factory.mktemp(f"similarity-{request.param}"))


def test_is_every_student_of_the_class_compared(compared):
    assert f"{len(compared.students)} students compared" in compared.result.stdout
    assert "left out" not in compared.result.stderr


def test_are_disguised_copies_of_the_reference_flagged(compared):
    for copy in COPIES:
        assert compared.best(copy, "reference") >= DEFAULT_THRESHOLD, (copy, compared.pairs)
    for one, other in itertools.combinations(COPIES, 2):
        assert compared.best(one, other) >= DEFAULT_THRESHOLD, (one, other)


def test_does_independently_written_code_stay_below_the_threshold(compared):
    correct = [v.name for v in variants_of(compared.assignment).values() if v.correct]
    independent = [
        f"own_{name}"
        for name in correct
        if name not in edited_from_the_reference(compared.assignment)
    ]
    assert independent
    for a, b in itertools.combinations(["reference", *independent], 2):
        assert compared.best(a, b) < DEFAULT_THRESHOLD, (a, b, compared.pairs.get((a, b)))


def test_is_code_edited_from_the_reference_found(compared):
    for name in edited_from_the_reference(compared.assignment):
        assert compared.best(f"own_{name}", "reference") >= DEFAULT_THRESHOLD, name


def test_does_the_untouched_release_share_nothing_with_anyone(compared):
    assert not [pair for pair in compared.pairs if "release" in pair]


def test_is_the_table_ranked_with_both_shares_and_the_shared_lines(compared):
    lines = compared.result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if "student A" in line)
    rows = lines[header + 1 : header + 6]
    assert len(rows) == 5
    shares = [max(int(x.rstrip("%")) for x in row.split() if x.endswith("%")) for row in rows]
    assert shares == sorted(shares, reverse=True)
    assert all(" / " in row for row in rows)  # shared lines of A / of B


class _Report(HTMLParser):
    """The structure of the HTML report: each pair's sides, and the marked lines of each."""

    def __init__(self):
        super().__init__()
        self.pairs: list[list[dict]] = []  # per pair, per side: {"name", "regions"}
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self._heading = False

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        attrs = dict(attrs)
        self.attributes |= set(attrs)
        css = (attrs.get("class") or "").split()
        if tag == "section" and "pair" in css:
            self.pairs.append([])
        elif "side" in css:
            self.pairs[-1].append({"name": "", "regions": set()})
        elif tag == "h3" and self.pairs and self.pairs[-1]:
            self._heading = True
        elif "line" in css and any(c.startswith("r") for c in css):
            self.pairs[-1][-1]["regions"].add(attrs["title"])

    def handle_endtag(self, tag):
        self._heading = self._heading and tag != "h3"

    def handle_data(self, data):
        if self._heading:
            self.pairs[-1][-1]["name"] += data


def test_does_the_html_report_show_every_flagged_pair_side_by_side(compared):
    page = compared.html.read_text()
    report = _Report()
    report.feed(page)
    flagged = {tuple(sorted(p)) for p, (ab, ba) in compared.pairs.items() if max(ab, ba) >= 50}
    assert len(report.pairs) == min(len(flagged), MAX_PAIRS)
    for sides in report.pairs:
        assert len(sides) == 2
        assert tuple(sorted(s["name"] for s in sides)) in flagged
        # Every region is marked on both sides, under the same number.
        assert sides[0]["regions"] and sides[0]["regions"] == sides[1]["regions"]
    assert "script" not in report.tags and not any(a.startswith("on") for a in report.attributes)
    assert 'src="data:image/png;base64,' in page  # the histogram, embedded
    assert compared.html.with_name("report-histogram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
def test_does_a_browser_draw_the_matching_regions_side_by_side(tmp_path):
    """A small class's report in headless Chromium: the first region's colour is drawn in both
    halves of the page. (The structure of every report is checked above without a browser.)"""
    students = class_of(load_manifest("res_dense_nets"))
    write_class(
        tmp_path, "res_dense_nets", {n: students[n] for n in ("reference", "copy_disguised")}
    )
    page, shot = tmp_path / "report.html", tmp_path / "report.png"
    result = run_cli("grader", "similarity", str(tmp_path), "--html", str(page))
    assert result.returncode == 0, result.stderr
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                f"--screenshot={shot}",
                "--window-size=1400,1400",
                page.as_uri(),
            ],
            capture_output=True,
            timeout=120,
            check=True,
        )
    from matplotlib.image import imread

    pixels = (imread(shot)[:, :, :3] * 255).round().astype(int)  # (H, W, 3)
    first_region = np.array([0xFF, 0xE0, 0x8A])  # .r0 in the report's style sheet
    marked = (np.abs(pixels - first_region).sum(axis=2) < 6).any(axis=0)  # (W,) columns
    half = pixels.shape[1] // 2
    assert marked[:half].any() and marked[half:].any()
