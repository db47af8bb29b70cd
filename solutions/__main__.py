"""`python -m solutions ...`: see solutions/cli.py."""

import sys

from solutions.cli import main

sys.exit(main())
