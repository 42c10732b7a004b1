"""State that bot processes on one database share, on both backends: two stores on one database stand for two
processes. The drawing limits hold across them, and each scheduled job runs in one of them."""

import asyncio
from datetime import timezone

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.jobs import OneProcessScheduler
from bot.limits import Limits
from bot.store import Store


def two_processes(target, data_dir, scenario):
    """``scenario(first, second)`` on two stores opened on one database (as two bot processes would)."""
    async def go():
        first = await Store.open(target, data_dir)
        second = await Store.open(target, data_dir)
        try:
            return await scenario(first, second)
        finally:
            await first.close()
            await second.close()
    return asyncio.run(go())


def test_limits_hold_across_processes(store_target, tmp_path):
    now = [1000.0]

    async def scenario(first: Store, second: Store):
        a, b = (Limits(s.db, 10, 2, clock=lambda: now[0]) for s in (first, second))
        seen = [await a.take("telegram:1", "telegram:100"), await b.check("telegram:1", "web:local"),
                await b.take("telegram:2", "telegram:100"), await a.take("telegram:3", "telegram:100")]
        await b.give_back("telegram:2", "telegram:100")
        seen += [await a.take("telegram:3", "telegram:100")]
        now[0] += 61
        seen += [await b.take("telegram:1", "telegram:100")]
        return seen
    first, cooled, second, busy, after_give_back, later = two_processes(store_target, tmp_path, scenario)
    assert first is None and second is None and after_give_back is None and later is None
    assert cooled == "Slow down a little — you can draw again in 10 s."
    assert busy == "This chat is drawing a lot — try again in 60 s."


def test_one_user_pressing_in_two_processes_at_once_draws_once(store_target, tmp_path):
    async def scenario(first: Store, second: Store):
        limits = [Limits(s.db, 30, 1000) for s in (first, second)]
        return await asyncio.gather(*(limits[n % 2].take("telegram:1", f"chat{n}") for n in range(10)))
    refusals = two_processes(store_target, tmp_path, scenario)
    assert sum(r is None for r in refusals) == 1


def test_each_scheduled_firing_runs_in_one_process_and_another_takes_over_when_it_stops(store_target, tmp_path):
    async def scenario(first: Store, second: Store):
        runs = {"first": 0, "second": 0}
        schedulers = []
        for name, store in (("first", first), ("second", second)):
            async def job(name=name):
                runs[name] += 1
            scheduler = AsyncIOScheduler(timezone=timezone.utc)
            scheduler.start()
            jobs = OneProcessScheduler(scheduler, store.leases)
            jobs.add_job(job, IntervalTrigger(seconds=0.3), id="check", max_instances=1, coalesce=True)
            schedulers.append((scheduler, jobs))
        while sum(runs.values()) < 4:
            await asyncio.sleep(0.05)
        together = dict(runs)
        holder = max(runs, key=runs.get)
        scheduler, jobs = schedulers[list(runs).index(holder)]
        scheduler.shutdown(wait=False)
        await jobs.close()
        other = min(runs, key=runs.get)
        while runs[other] == together[other]:
            await asyncio.sleep(0.05)
        for scheduler, _ in schedulers:
            if scheduler.running:
                scheduler.shutdown(wait=False)
        return together, runs[other]
    together, taken_over = two_processes(store_target, tmp_path, scenario)
    assert sorted(together.values())[0] == 0  # while both ran, one process ran every firing
    assert taken_over >= 1
