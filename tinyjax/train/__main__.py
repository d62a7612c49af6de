"""``python -m tinyjax.train``: see :mod:`tinyjax.train.cli`."""

import sys

from tinyjax.errors import run_cli
from tinyjax.train.cli import main

sys.exit(run_cli(main, prog="tinyjax.train"))
