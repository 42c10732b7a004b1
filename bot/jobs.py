"""Scheduled jobs that run in one process of all those on one database.

Every bot process schedules the same jobs (the retraining check); at each firing the job runs only in the process
that holds the job's lease in the database (bot/store/leases.py). The holder renews the lease at each of its
firings, for two periods of the trigger: while it lives and keeps its schedule, no other process runs the job,
and when it stops (closing gives the lease up) or falls a whole period behind, the next process to fire takes it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

from bot.store.leases import Leases

log = logging.getLogger(__name__)

LEASE_PERIODS = 2.0  # a lease lasts this many gaps between firings, so a firing a little late keeps it
NO_NEXT_FIRING_S = 3600.0  # the lease of a job that will not fire again


def lease_name(job_id: str) -> str:
    return f"job:{job_id}"


class OneProcessScheduler:
    """What ``Retrainer.schedule`` uses of an APScheduler 3 scheduler (``add_job``), with each job leased."""

    def __init__(self, scheduler: Any, leases: Leases):
        self._scheduler = scheduler
        self._leases = leases
        self._jobs: list[str] = []

    def add_job(self, func: Callable[[], Awaitable[None]], trigger: Any, *, id: str, **options: Any) -> Any:
        self._jobs.append(id)
        return self._scheduler.add_job(self._leased(func, trigger, id), trigger, id=id, **options)

    def _leased(self, func: Callable[[], Awaitable[None]], trigger: Any,
                job_id: str) -> Callable[[], Awaitable[None]]:
        async def if_ours() -> None:
            now = datetime.now(timezone.utc)
            following = trigger.get_next_fire_time(None, now)
            ttl = LEASE_PERIODS * (following - now).total_seconds() if following else NO_NEXT_FIRING_S
            if not await self._leases.claim(lease_name(job_id), ttl):
                log.debug("%s: another process holds it", job_id)
                return
            await func()
        return if_ours

    async def close(self) -> None:
        """Give up the leases of this process's jobs, so another process takes them at its next firing."""
        for job_id in self._jobs:
            await self._leases.release(lease_name(job_id))
