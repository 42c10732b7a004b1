"""Shared fixtures: tiny procedurally drawn faces with known colours, a data directory, a tiny model."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
