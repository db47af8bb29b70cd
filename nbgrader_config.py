"""nbgrader settings for this course; run nbgrader commands from the repository root."""

import os

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.CourseDirectory.course_id = "deep-learning-pytorch"
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
# Student copies get this where a solution region was.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# A hidden test cell observes the student's code and the reference's (the DenseNet's grade cell
# builds and runs several networks): nbgrader's 30 s per cell scored such a cell 0 on a busy
# machine. The grader's own sandbox has its own limits (README).
c.Execute.timeout = 300
# Feedback and formgrader pages show students' notebooks: HTML in cell outputs and in markdown
# that nbconvert's own templates render goes through its sanitiser. (nbgrader's feedback and
# formgrade templates render markdown cells unsanitised whatever this says: the grader writes
# the autograded notebook's markdown already sanitised, see grader/sanitise.py.)
c.HTMLExporter.sanitize_html = True

# Kernels started by `nbgrader autograde` read the data from where the grader finds it.
try:
    from solutions.data import resolve_root

    os.environ.setdefault("DLGRADE_DATA", str(resolve_root("fashion_mnist", online=False).root))
except Exception:  # noqa: BLE001 - no data here: the notebook's data cell will say so
    pass

# Kernels started by `nbgrader autograde` answer what a notebook written on Colab expects, as the
# grader's probe does (grader/probe/colab.py): `from google.colab import drive` and
# `drive.mount(...)` do nothing, and a data set asked for under a Drive folder is read from the
# data root above.
c.Execute.extra_arguments = [
    "--InteractiveShellApp.exec_lines="
    "from grader.probe import colab; colab.install(); colab.find_data_anywhere()"
]
