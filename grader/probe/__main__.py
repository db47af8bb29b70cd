"""`python -m grader.probe JOB.json`: the entry point the sandbox runs."""

import os
import sys
from pathlib import Path

# Training cells check this and load the submitted weights instead of training, as under nbgrader.
os.environ.setdefault("NBGRADER_EXECUTION", "autograde")
os.environ.setdefault("MPLBACKEND", "Agg")

from grader.probe.run import main  # noqa: E402 - the environment must be set first

if __name__ == "__main__":
    code = main(Path(sys.argv[1]))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip interpreter teardown: student atexit hooks and threads do not run
