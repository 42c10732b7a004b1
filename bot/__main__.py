"""``python -m bot [--config PATH]``: the same as ``moebot run``."""

import sys

from bot.cli import main

sys.exit(main(["run", *sys.argv[1:]]))
