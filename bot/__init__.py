"""The chat side: command line, configuration and (later) the chat adapters."""

import generator  # noqa: F401  (sets OMP_WAIT_POLICY before torch loads)
