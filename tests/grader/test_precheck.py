"""Does the students' pre-submission check pass a good submission and name what is missing?"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys

import nbformat

from solutions.data import resolve_root
from tests.conftest import REPO


def run_precheck(folder):
    shutil.copy(REPO / "release" / "res_dense_nets" / "precheck.py", folder)
    env = {
        "PATH": f"{sys.prefix}/bin:/usr/bin:/bin",
        "DLGRADE_DATA": str(resolve_root("fashion_mnist").root),
        "HOME": str(folder),
    }
    return subprocess.run(
        [sys.executable, "precheck.py", "res_dense_nets.ipynb"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def test_does_the_reference_submission_pass_the_precheck(reference_submission, tmp_path):
    folder = tmp_path / "ok"
    shutil.copytree(reference_submission, folder)
    result = run_precheck(folder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Ready to submit" in result.stdout


def test_does_the_precheck_name_a_stub_a_missing_cell_and_a_missing_weights_file(
    reference_submission, tmp_path
):
    folder = tmp_path / "bad"
    shutil.copytree(reference_submission, folder)
    nb = nbformat.read(folder / "res_dense_nets.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.source.startswith("class Transition"):
            cell.source = (
                "class Transition(nn.Module):\n"
                "    def __init__(self, a, b):\n"
                "        raise NotImplementedError()"
            )
    nb.cells = [c for c in nb.cells if not c.source.startswith("def shape_answers")]
    nbformat.write(nb, folder / "res_dense_nets.ipynb")
    (folder / "densenet.pt").unlink()
    result = run_precheck(folder)
    assert result.returncode == 1
    assert '"B2. The transition layer" (`class Transition`) still raises' in result.stdout
    assert '"B4. Shapes inside the network": the solution cell' in result.stdout
    assert "densenet.pt is missing" in result.stdout


def test_does_the_precheck_tell_a_file_over_its_limit_apart_from_the_limit(tmp_path, monkeypatch):
    """Blind round 12 (cifar_cnn_svm): a 2.04 MB checkpoint against a 2 MB limit read "2.0 MB;
    the limit is 2.0 MB", with no word of why it was too big."""
    spec = importlib.util.spec_from_file_location(
        "precheck", REPO / "release" / "res_dense_nets" / "precheck.py"
    )
    precheck = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(precheck)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(precheck, "ASSIGNMENT", {"weights": [{"file": "cnn.pt", "max_mb": 2}]})
    (tmp_path / "cnn.pt").write_bytes(bytes(int(2.04 * 1024**2)))
    (problem,) = precheck.check_weights()
    assert problem.startswith("cnn.pt is 2.04 MB; the limit is 2 MB"), problem
    assert "model.state_dict() alone" in problem
