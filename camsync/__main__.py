"""`python -m camsync` runs the same CLI as the `camsync` console script."""

import sys

from camsync.cli import main

sys.exit(main())
