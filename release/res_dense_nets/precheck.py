"""Pre-submission check for students: run `%run precheck.py` as the last cell (Colab or Jupyter),
or `python precheck.py NOTEBOOK.ipynb` from a shell.

It checks that every part of the assignment is still in the notebook and filled in, that the
weights files exist and load safely, and that the notebook runs from top to bottom the way the
grader runs it (training cells load the weights files instead of training). It runs none of the
hidden tests and knows none of the expected answers: passing it means "ready to be graded", not
"full marks".
"""

import glob
import json
import os
import re
import sys

ASSIGNMENT = json.loads(r"""{
 "id": "res_dense_nets",
 "notebook": "res_dense_nets.ipynb",
 "cells": {
  "resblock": "^class ResBlock\\b",
  "resmlp": "^class ResMLP\\b",
  "loops": "^def train_epoch\\b",
  "train_resmlp": "^resmlp\\ =\\ ResMLP\\(\\)\\.to\\(device\\)",
  "denseblock": "^class DenseBlock\\b",
  "transition": "^class Transition\\b",
  "densenet": "^class DenseNet\\b",
  "answers": "^def shape_answers\\b",
  "train_densenet": "^densenet\\ =\\ DenseNet\\(12\\)\\.to\\(device\\)"
 },
 "weights": [
  {
   "file": "resmlp.pt",
   "max_mb": 20.0
  },
  {
   "file": "densenet.pt",
   "max_mb": 20.0
  }
 ],
 "timeout": 900
}""")


def _live_colab_notebook():
    """The notebook open in Colab, as JSON, or None outside Colab."""
    try:
        from google.colab import _message  # type: ignore[import-not-found]
    except ImportError:
        return None
    reply = _message.blocking_request("get_ipynb", request="", timeout_sec=60)
    return reply.get("ipynb") if isinstance(reply, dict) else None


def _load_notebook(path):
    if path:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle), path
    live = _live_colab_notebook()
    if live is not None:
        return live, "the notebook open in Colab"
    candidates = [ASSIGNMENT["notebook"]] + sorted(glob.glob("*.ipynb"))
    for candidate in candidates:
        if os.path.isfile(candidate):
            with open(candidate, encoding="utf-8") as handle:
                return json.load(handle), candidate
    raise SystemExit(f"no notebook found: run `python precheck.py {ASSIGNMENT['notebook']}`")


def _source(cell):
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def check_cells(nb):
    """Every part present exactly once and no stub left in it."""
    problems = []
    code = [_source(c) for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    for name, signature in ASSIGNMENT["cells"].items():
        pattern = re.compile(signature, re.M)
        found = [src for src in code if pattern.search(src)]
        if not found:
            problems.append(f"the cell for '{name}' is missing (looked for {signature!r})")
        elif len(found) > 1:
            problems.append(f"'{name}' is defined in {len(found)} cells: keep one")
        elif "raise NotImplementedError" in found[0]:
            problems.append(f"'{name}' still raises NotImplementedError: fill it in")
    return problems


def check_weights():
    """Weights files present, small enough, and loadable with weights_only=True."""
    import torch

    problems = []
    for spec in ASSIGNMENT["weights"]:
        path = spec["file"]
        if not os.path.isfile(path):
            problems.append(f"{path} is missing: run its training cell, then download it")
            continue
        size_mb = os.path.getsize(path) / 1024**2
        if size_mb > spec["max_mb"]:
            problems.append(f"{path} is {size_mb:.1f} MB; the limit is {spec['max_mb']} MB")
            continue
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - reported to the student
            problems.append(f"{path} does not load with weights_only=True: {err}")
            continue
        if not isinstance(state, dict):
            problems.append(f"{path} holds a {type(state).__name__}: save model.state_dict()")
    return problems


def check_json_files():
    """Configuration files handed in beside the weights: present and valid JSON objects."""
    problems = []
    for path in ASSIGNMENT.get("json_files", []):
        if not os.path.isfile(path):
            problems.append(f"{path} is missing: run the cell that writes it, then download it")
            continue
        try:
            with open(path, encoding="utf-8") as handle:
                value = json.load(handle)
        except (OSError, ValueError) as err:
            problems.append(f"{path} is not valid JSON: {err}")
            continue
        if not isinstance(value, dict):
            problems.append(f"{path} holds a {type(value).__name__}, not a JSON object")
    return problems


def check_runs(nb, timeout):
    """Run a copy of the notebook top to bottom as the grader does; report the first error."""
    try:
        import nbformat
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError
    except ImportError:
        return ["cannot run the notebook here: `pip install nbclient` (Colab has it)"]
    os.environ["NBGRADER_EXECUTION"] = "validate"  # training cells load the weights files
    node = nbformat.reads(json.dumps(nb), as_version=4)
    for cell in node.cells:
        if cell.cell_type == "code" and "%run precheck" in cell.source:
            cell.source = ""  # do not run this check inside itself
    client = NotebookClient(
        node, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": os.getcwd()}}
    )
    try:
        client.execute()
    except CellExecutionError as err:
        first = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip().splitlines()
        return ["the notebook does not run from top to bottom:\n    " + "\n    ".join(first[-6:])]
    except Exception as err:  # noqa: BLE001 - timeouts, dead kernels
        return [f"the notebook could not be run: {type(err).__name__}: {err}"]
    finally:
        os.environ.pop("NBGRADER_EXECUTION", None)
    return []


def main(argv):
    if os.environ.get("NBGRADER_EXECUTION"):
        print("pre-submission check skipped while grading")
        return 0
    nb, where = _load_notebook(argv[1] if len(argv) > 1 else None)
    print(f"Checking {where} for '{ASSIGNMENT['id']}'...")
    results = {
        "all parts present and filled in": check_cells(nb),
        "weights files": check_weights(),
    }
    if ASSIGNMENT.get("json_files"):
        results["configuration files"] = check_json_files()
    if not any(results.values()):
        results["runs top to bottom (training cells load your weights)"] = check_runs(
            nb, ASSIGNMENT["timeout"]
        )
    ok = True
    for what, problems in results.items():
        print(("  ok    " if not problems else "  FIX   ") + what)
        for problem in problems:
            print("        - " + problem)
        ok = ok and not problems
    print(
        "Ready to submit: hand in "
        + ", ".join(
            [os.path.basename(ASSIGNMENT["notebook"])]
            + [w["file"] for w in ASSIGNMENT["weights"]]
            + ASSIGNMENT.get("json_files", [])
        )
        if ok
        else "Not ready yet: fix the points above and run this check again."
    )
    return 0 if ok else 1


def _in_notebook():
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


if __name__ == "__main__":
    code = main(sys.argv)
    if not _in_notebook():  # `%run precheck.py` must not stop the student's kernel
        sys.exit(code)
