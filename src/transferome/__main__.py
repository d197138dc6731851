"""``python -m transferome``: the command line, as the ``transferome`` console script."""

from __future__ import annotations

import sys

from transferome.cli import main

sys.exit(main())
