"""``python -m wildcat``: the same as the ``wildcat`` command."""

import sys

from wildcat.cli import main

sys.exit(main())
