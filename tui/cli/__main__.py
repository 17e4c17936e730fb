"""`python -m tui.cli`: the `voxtop` command."""

import sys

from tui.cli import main

sys.exit(main())
