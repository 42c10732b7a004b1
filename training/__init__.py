"""Import data, train, evaluate. Imports ``generator`` first so OMP_WAIT_POLICY is set before torch loads."""

import generator  # noqa: F401  (sets OMP_WAIT_POLICY before torch loads)
