"""Scheduled retraining in the bot process: when to run, the child process that trains, the gate, promotion.

The schedule is one job on the bot's APScheduler (python-telegram-bot's own when Telegram runs, so there
is one scheduler per process). A run is ``python -m training.retrain`` in a child process at nice 10 with
capped threads, so the bot stays responsive; the child fine-tunes and measures, this side decides: the
gate (training/gate.py) promotes the candidate through the model lifecycle (training/lifecycle.py), which
every generator service follows without a restart, or rejects it with its figures. A child that dies or is killed leaves
its row 'failed' and the active model serving. The registry and the faces are read and written in the bot's
database through the store's interface (SQLite or PostgreSQL); the child gets its faces in a rows file. A lease
in that database (bot/store/leases.py), renewed while the run goes, keeps two runs, even of two bot processes
on two machines, from overlapping.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import secrets
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Awaitable, Callable, Mapping

from bot.config import TrainingConfig
from bot.store.database import Database
from bot.store.leases import Leases
from generator.model_kinds import KINDS, weights_map
from generator.weights import BUNDLED_DISCRIMINATOR, BUNDLED_GENERATOR, face_px, read_metadata, weights_version
from training import registry
from training.dataset import FaceRow, of_size, read_rows, read_tagged_rows, write_rows
from training.gate import judge
from training.lifecycle import Lifecycle
from training.registry import ModelRecord
from training.retrain import RetrainOptions

if TYPE_CHECKING:
    from generator.service import DrawingService

log = logging.getLogger(__name__)

RUN_LEASE = "retraining-run"  # held by the process whose run goes; no other process starts one meanwhile
RUN_LEASE_S = 120.0  # renewed every quarter of this while the run goes: a process that dies frees it this soon
ROWS_NAME = "rows.json"  # in the run folder: the faces the run trains and measures on
NO_BASE_FACES = ("No retraining run: the database holds no imported {size} px faces to fine-tune the serving model on "
                 "beside the curated ones (`moebot import{flag}` puts them in the SQLite file of data_dir; see the "
                 "README on PostgreSQL).")


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended, as admins are told; a notice that is not about a run (a full disk) travels the same
    way, its ``version`` naming what it is about."""

    version: str
    promoted: bool
    reason: str
    text: str          # a summary ready to send to admins
    grid: Path | None  # before | after, one row per hair colour


Subscriber = Callable[[RunOutcome], Awaitable[None]]


class Retrainer:
    def __init__(self, cfg: TrainingConfig, data_dir: Path, db: Database,
                 default_weights: Path | Mapping[str, Path | None], ray_address: str | None = None):
        """``db``: the store's database (the registry, the faces and the run's lease are in it);
        ``default_weights``: what serves while nothing was promoted, the face generator's file or files by
        kind (a kind not named: its bundled weights)."""
        self.cfg = cfg
        self.ray_address = ray_address  # backend "ray": the cluster (None: start or attach a local Ray)
        self.data_dir = Path(data_dir)
        self.db = db
        self.leases = Leases(db)
        configured = weights_map(default_weights)
        self.lifecycle = Lifecycle(self.data_dir, db, {
            kind: Path(configured[kind]) if configured[kind] else k.bundled for kind, k in KINDS.items()})
        self._subscribers: list[Subscriber] = []
        self._told: dict[str, float] = {}  # notice -> when admins were last told it (time.monotonic)
        self._task: asyncio.Task | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._version = ""
        self._started = datetime.now(timezone.utc)
        self._holder = ""  # who holds the run's lease for the run of this process (bot/store/leases.py)
        self._closed = False  # shutting down: no new run may start (its child would outlive the bot)

    @property
    def running(self) -> tuple[str, int | None] | None:
        """(version, child pid) of the run going on in this process, if any."""
        if self._task is None or self._task.done():
            return None
        return self._version, self._process.pid if self._process else None

    def attach(self, service: DrawingService) -> None:
        """Switch ``service`` (a generator service of this process) to every model this retrainer promotes or rolls
        back to before saying so (see ``Lifecycle.attach``)."""
        self.lifecycle.attach(service)

    def subscribe(self, callback: Subscriber) -> None:
        """``callback(outcome)`` is awaited when a run ends (promoted, rejected or failed), and for notices."""
        self._subscribers.append(callback)

    async def tell_admins(self, outcome: RunOutcome) -> None:
        """Hand ``outcome`` to every subscriber (the chat platforms send it to their admins); one that fails is
        logged, the others are still told."""
        for callback in self._subscribers:
            try:
                await callback(outcome)
            except Exception:
                log.exception("could not tell admins about %s", outcome.version)

    async def warn_admins(self, about: str, text: str, every_s: float = 3600.0) -> bool:
        """Tell admins ``text`` unless they were told of ``about`` within ``every_s`` seconds; whether they were."""
        now = time.monotonic()
        if now - self._told.get(about, -every_s) < every_s:
            return False
        self._told[about] = now
        await self.tell_admins(RunOutcome(about, False, text, text, None))
        return True

    def schedule(self, scheduler) -> None:
        """Add the check to an APScheduler 3 scheduler: every ``every_s`` seconds if set, else by ``cron`` (UTC)."""
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger
        trigger = IntervalTrigger(seconds=self.cfg.every_s) if self.cfg.every_s else \
            CronTrigger.from_crontab(self.cfg.cron, timezone=timezone.utc)
        scheduler.add_job(self.scheduled, trigger, id="moebot-retrain", name="moebot retraining check",
                          replace_existing=True, max_instances=1, coalesce=True, misfire_grace_time=3600)

    async def scheduled(self) -> None:
        """The scheduled check: train only when enough curated faces arrived that the active model lacks.

        A run that ends while the faces are counted may have promoted a model that saw them, so the count is
        only acted on if no run started or ran meanwhile (the next check counts again)."""
        if self.running is not None:
            return
        task = self._task
        new = await self._new_curated()
        if self._task is not task:
            return
        if new < self.cfg.min_new:
            log.info("retraining: %d new curated faces, %d needed; not running", new, self.cfg.min_new)
            return
        log.info("retraining: %s", await self.start(f"schedule ({new} new curated faces)"))

    async def start(self, requested_by: str) -> str:
        """Start a run now unless one is going; a readable answer either way."""
        if self._closed:
            return "The bot is shutting down; no retraining run starts now."
        if (going := self.running) is not None:
            return f"A retraining run ({going[0]}) is already going since {self._started:%H:%M} UTC."
        self._holder = f"{self.leases.holder}/{secrets.token_hex(4)}"  # this run's: a second start here waits too
        if not await self.leases.claim(RUN_LEASE, RUN_LEASE_S, self._holder):
            return "A retraining run is going in another moebot process; try again when it has finished."
        try:
            rows = await read_rows(self.db, ("base", "curated"))  # every size: the parent's preset picks its own
            parent_version, parent_path, parent_d = await self._parent()
            size = face_px(parent_path)
            if not any(r.status == "base" for r in of_size(rows, size)):
                await self.leases.release(RUN_LEASE, self._holder)
                return NO_BASE_FACES.format(size=size, flag="" if size == 64 else f" <folder> --size {size}")
            await registry.fail_interrupted(self.db)  # this process holds the lease: a run left 'training' died
            self._version = f"ft-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
            self._started = datetime.now(timezone.utc)
            run_dir = self.data_dir / "retrain" / self._version
            await asyncio.to_thread(self._write_rows, run_dir, rows)
            await registry.begin(self.db, self._version, parent_version, run_dir)
        except BaseException:
            await self.leases.release(RUN_LEASE, self._holder)
            raise
        self._task = asyncio.create_task(self._run(self._version, parent_path, parent_d, run_dir, requested_by))
        budget = f" or {self.cfg.minutes:g} CPU-minutes, whichever ends first" if self.cfg.minutes else ""
        return (f"Started retraining run {self._version} from {parent_version} ({self.cfg.steps} steps{budget}, "
                f"requested by {requested_by}); admins get the result when it ends.")

    async def wait(self) -> RunOutcome | None:
        """The outcome of the run going on (or the last one), once it has ended."""
        return await self._task if self._task else None

    async def close(self) -> None:
        """Stop a run at shutdown (it is recorded as failed; the next schedule starts afresh)."""
        self._closed = True
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
        elif self._task is not None and not self._task.done():
            self._task.cancel()  # a Ray run: cancelling the wait cancels the task; the row fails at next start
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def models(self) -> list[ModelRecord]:
        await self._register_active()
        await self._fail_dead_runs()
        return await registry.listing(self.db)

    async def rollback(self, version: str | None, requested_by: str, kind: str = "face") -> str:
        """Serve ``version`` (default: the model of ``kind`` that served before the current one) again; a kind's
        name for ``version`` (``/rollback upscaler``) rolls that kind back."""
        if version in KINDS:
            version, kind = None, version
        await self._register_active()
        return await self.lifecycle.rollback(version, requested_by, kind)

    async def _run(self, version: str, parent: Path, parent_d: Path | None, run_dir: Path,
                   requested_by: str) -> RunOutcome:
        renewing = asyncio.create_task(self._keep_lease())
        try:
            try:
                outcome = await self._train_and_judge(version, parent, parent_d, run_dir, requested_by)
            except Exception as e:  # never let a failed run take the bot down or stay 'training'
                log.exception("retraining run %s failed", version)
                outcome = await self._failed(version, f"error: {e}")
            finally:
                self._process = None
            log.info("retraining run %s (%s): %s", version, requested_by, outcome.reason)
            await self._prune()
        finally:
            renewing.cancel()
            await self.leases.release(RUN_LEASE, self._holder)
        await self.tell_admins(outcome)
        return outcome

    async def _keep_lease(self) -> None:
        """Renew the run's lease while the run goes; a database that cannot be reached meanwhile is logged (the
        run goes on, and another process may start one once the lease has run out)."""
        while True:
            await asyncio.sleep(RUN_LEASE_S / 4)
            try:
                if not await self.leases.claim(RUN_LEASE, RUN_LEASE_S, self._holder):
                    log.error("retraining: another process took the run's lease")
            except Exception:
                log.exception("retraining: could not renew the run's lease")

    async def _fail_dead_runs(self) -> None:
        """Runs left 'training' by a process that died are failed, unless a run holds the lease (they may be its
        own); the check holds the lease meanwhile, under a name of its own, so no run starts in between. Nothing
        is written when no run is recorded as going (reading commands work on a full disk)."""
        check = f"{self.leases.holder}/check"
        if await registry.training(self.db) and await self.leases.claim(RUN_LEASE, RUN_LEASE_S, check):
            try:
                await registry.fail_interrupted(self.db)
            finally:
                await self.leases.release(RUN_LEASE, check)

    def _write_rows(self, run_dir: Path, rows: list[FaceRow]) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_rows(run_dir / ROWS_NAME, self.data_dir, rows)

    async def _train_and_judge(self, version: str, parent: Path, parent_d: Path | None, run_dir: Path,
                               requested_by: str) -> RunOutcome:
        c = self.cfg
        opts = RetrainOptions(data=str(run_dir / ROWS_NAME), run=str(run_dir), parent=str(parent), version=version,
                              parent_d=str(parent_d or ""), **c.tuning())
        why = await (self._train_on_ray(opts) if c.backend == "ray" else self._train_in_child(opts))
        if why:
            return await self._failed(version, why)
        verdict = json.loads((run_dir / "verdict.json").read_text())
        grid = Path(verdict["grid"])
        ok, why = judge(verdict["metrics"], verdict["parent_metrics"], self.cfg.margins)
        await registry.record_result(self.db, version, Path(verdict["candidate"]), verdict["metrics"],
                                     verdict["parent_metrics"], grid, verdict["base_max_id"], verdict["curated_ids"])
        if ok:
            await self.lifecycle.promote("face", version, f"retraining ({requested_by})", why)
        else:
            await registry.set_state(self.db, version, "rejected", why)
        m, p = verdict["metrics"], verdict["parent_metrics"]
        change = ", ".join(f"{name} {p[k]:{f}} → {m[k]:{f}}" for name, k, f in (
            ("hair", "hair_ratio", ".3f"), ("eye", "eye_ratio", ".3f"), ("coverage", "diversity_ratio", ".3f"),
            ("FD", "fd", ".2f")))
        text = (f"Retraining run {version} {'promoted' if ok else 'rejected'}: {why}\n{change}; "
                f"{len(verdict['curated_ids'])} curated faces. Grid: before | after.")
        return RunOutcome(version, ok, why, text, grid)

    async def _failed(self, version: str, why: str) -> RunOutcome:
        await registry.set_state(self.db, version, "failed", why)
        return RunOutcome(version, False, why, f"Retraining run {version} failed: {why}", None)

    async def _train_in_child(self, opts: RetrainOptions) -> str | None:
        """Train in ``python -m training.retrain`` (nice 10, capped threads); None, or why it failed."""
        args = [a for k, v in dataclasses.asdict(opts).items() for a in (f"--{k.replace('_', '-')}", str(v))]
        env = {**os.environ, "OMP_NUM_THREADS": str(opts.threads), "OMP_WAIT_POLICY": "PASSIVE"}
        log_path = Path(opts.run) / "log.txt"
        with open(log_path, "ab") as logfile:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "training.retrain", *args,
                stdout=logfile, stderr=logfile, env=env, preexec_fn=lambda: os.nice(10))
            code = await self._process.wait()
        if code == 0:
            return None
        return f"the training process ended with status {code}{_tail(log_path)}"

    async def _train_on_ray(self, opts: RetrainOptions) -> str | None:
        """Train as a task on the Ray cluster (this process holds the run's lease meanwhile); None, or why it
        failed."""
        from training.ray_training import retrain_on_ray
        try:
            await retrain_on_ray(opts, self.ray_address)
        except Exception as e:  # a task error, a lost node: the run failed, the bot goes on
            log.exception("retraining on Ray failed")
            return f"the Ray task failed: {type(e).__name__}: {e}"[:500]
        return None

    async def _register_active(self) -> tuple[str, Path]:
        """The face generator serving now, recorded in the registry."""
        return await self.lifecycle.serving("face")

    async def _parent(self) -> tuple[str, Path, Path | None]:
        """What a run starts from: the serving model's version and weights, and its discriminator if kept."""
        version, path = await self._register_active()
        return version, path, await self._partner(version)

    async def _partner(self, version: str) -> Path | None:
        """The discriminator trained beside ``version``: a fine-tune that starts from it keeps the pair's
        balance (a fresh one first drags the generator towards what it can tell apart, and faces blotch)."""
        record = await registry.get(self.db, version)
        kept = record.run_dir / "discriminator.safetensors" if record and record.run_dir else None
        if kept and kept.exists():
            return kept
        if BUNDLED_DISCRIMINATOR.exists() and version == weights_version(BUNDLED_GENERATOR,
                                                                         read_metadata(BUNDLED_GENERATOR)):
            return BUNDLED_DISCRIMINATOR
        return None

    async def _new_curated(self) -> int:
        """Curated training faces (held-out ones are only ever measured on) the active model has not seen."""
        version, _ = await self._register_active()
        curated = {r.id for r in await read_tagged_rows(self.db, "train", ("curated",))}
        return len(curated - await registry.trained_on(self.db, version))

    async def _prune(self) -> None:
        """Keep the run folders of the newest ``keep_runs`` runs (promoted weights live on in the models folder)."""
        records = await registry.listing(self.db, limit=1_000_000)
        keep = {r.run_dir for r in records[:self.cfg.keep_runs]} | \
            {r.run_dir for r in records if r.state in ("active", "training")}
        for r in records:
            if r.run_dir and r.run_dir not in keep and r.run_dir.exists():
                await asyncio.to_thread(shutil.rmtree, r.run_dir, ignore_errors=True)


def _tail(log_path: Path, lines: int = 3) -> str:
    try:
        last = log_path.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return ""
    return (": " + " | ".join(ln.strip() for ln in last)[-300:]) if last else ""
