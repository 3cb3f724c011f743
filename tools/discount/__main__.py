"""``python -m tools.discount``: see :mod:`tools.discount.cli`."""
import sys

from tools.discount.cli import main

sys.exit(main())
