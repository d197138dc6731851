"""``python -m transferome.cli``."""

from __future__ import annotations

import sys

from transferome.cli import main

sys.exit(main())
