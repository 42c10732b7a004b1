"""The chat side: command line, configuration, the platform-free core and the Telegram and Discord adapters."""

import generator  # noqa: F401  (sets OMP_WAIT_POLICY before torch loads)
