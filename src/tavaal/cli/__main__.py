"""``python -m tavaal.cli``."""

import sys

from tavaal.cli import main

sys.exit(main())
