"""Generation off the event loop: one worker thread with a bounded queue in front of it.

The seam is ``Worker.run(job)``: a job is a function of the sampler, run in
arrival order. A batching service can replace this class behind the same call.
"""

from __future__ import annotations

import asyncio
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Awaitable, Callable, TypeVar

from generator.sampler import FaceSampler

T = TypeVar("T")


class Busy(Exception):
    """The queue is full; ``retry_after`` is a fair guess of the seconds until it has room."""

    def __init__(self, retry_after: int):
        super().__init__(f"busy, try again in {retry_after} s")
        self.retry_after = retry_after


class Worker:
    def __init__(self, sampler: FaceSampler, queue_size: int):
        self.sampler = sampler
        self.queue_size = queue_size
        self.pending = 0  # jobs accepted and not finished: the one drawing plus those waiting
        self._seconds = 1.0  # moving average of one job's duration
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="generator")

    async def run(self, job: Callable[[FaceSampler], T],
                  on_queued: Callable[[int], Awaitable[None]] | None = None) -> T:
        """Run ``job`` on the worker thread; ``on_queued(position)`` is awaited when others are ahead.

        Raises Busy instead of queueing beyond ``queue_size`` waiting jobs.
        """
        ahead = self.pending
        if ahead > self.queue_size:
            raise Busy(max(1, math.ceil(self._seconds * (ahead - self.queue_size))))
        self.pending += 1
        try:
            future = asyncio.get_running_loop().run_in_executor(self._pool, self._timed, job)
            if ahead and on_queued is not None:
                await on_queued(ahead)
            return await future
        finally:
            self.pending -= 1

    def _timed(self, job: Callable[[FaceSampler], T]) -> T:
        start = time.perf_counter()
        try:
            return job(self.sampler)
        finally:
            self._seconds = 0.8 * self._seconds + 0.2 * (time.perf_counter() - start)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
