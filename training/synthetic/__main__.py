"""`python -m training.synthetic`: render a Carvana-layout data set (see `cli.main`)."""

import sys

from .cli import main

sys.exit(main())
