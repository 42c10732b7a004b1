"""Face generators: model definitions, bundled weights and the sampling API.

Importing this package before torch sets ``OMP_WAIT_POLICY=PASSIVE``: with the
default (spinning) OpenMP waits, two threads on a 2-core server made one face
take 172 ms instead of 9 ms.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
