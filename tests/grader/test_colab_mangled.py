"""Does a notebook that went through Colab grade the same as the clean one?"""

from __future__ import annotations

import json
import random
import shutil

from tests.conftest import grade


def mangle(src_folder, dest_folder, seed: int = 3):
    """What a trip through Colab can do: metadata and ids gone, cells moved, one duplicated,
    the file renamed."""
    shutil.copytree(src_folder, dest_folder)
    path = dest_folder / "res_dense_nets.ipynb"
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        cell.pop("id", None)
        cell["metadata"] = {}
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    nb["cells"].append(dict(code[3]))  # a duplicated cell
    random.Random(seed).shuffle(nb["cells"])  # the imports cell no longer comes first
    nb["metadata"] = {
        "colab": {"provenance": []},
        "kernelspec": {"name": "python3", "display_name": "Python 3"},
    }
    nb["nbformat_minor"] = 0
    path.unlink()
    (dest_folder / "Copy of res_dense_nets.ipynb").write_text(json.dumps(nb))
    return dest_folder


def test_does_a_colab_mangled_notebook_score_like_the_clean_one(
    reference_submission, reference_report, tmp_path
):
    mangled = mangle(reference_submission, tmp_path / "carol" / "res_dense_nets")
    report = grade(mangled, tmp=tmp_path)[0]
    assert report["student"] == "carol"
    assert [(c["name"], c["points"]) for c in report["checks"]] == [
        (c["name"], c["points"]) for c in reference_report["checks"]
    ]
