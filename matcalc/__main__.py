"""``python -m matcalc``: the same command line as the ``matcalc`` script."""

import sys

from .cli import main

sys.exit(main())
