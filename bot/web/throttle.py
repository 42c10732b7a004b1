"""Failed sign-ins per address: a few are free, then each one locks the address out twice as long.

An admin who mistypes the token is not slowed down; someone guessing it gets about 10 tries in the
first minute and one per ``max_lock_s`` after that (60 wrong guesses used to take under a second).
"""

from __future__ import annotations

import time
from typing import Callable


class LoginThrottle:
    def __init__(self, free: int = 5, max_lock_s: float = 300.0, forget_s: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic):
        self.free, self.max_lock_s, self.forget_s, self._clock = free, max_lock_s, forget_s, clock
        self._failed: dict[str, tuple[int, float]] = {}  # address -> (failures in a row, locked until)

    def wait(self, address: str) -> float:
        """Seconds until ``address`` may try a token again; 0 when it may now."""
        return max(0.0, self._failed.get(address, (0, 0.0))[1] - self._clock())

    def failed(self, address: str) -> None:
        now = self._clock()
        failures, until = self._failed.pop(address, (0, now))
        if now - until > self.forget_s:  # an old streak is forgiven
            failures = 0
        failures += 1
        lock = min(2.0 ** (failures - self.free), self.max_lock_s) if failures >= self.free else 0.0
        self._failed[address] = (failures, now + lock)
        if len(self._failed) > 10_000:  # many addresses: forget the one that failed longest ago
            del self._failed[next(iter(self._failed))]

    def succeeded(self, address: str) -> None:
        self._failed.pop(address, None)
