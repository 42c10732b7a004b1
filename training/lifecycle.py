"""The model lifecycle: how a model of any kind becomes the one that serves, and how it goes back.

``Lifecycle.promote(kind, version, actor, reason)`` is the one way: the version's weights are checked (they
load as their kind, their output is finite), this process's generator services switch to them, the
registry records it (the state change and who made it, why) in one transaction, and only then is the
pointer that other processes' services follow rewritten from what the registry recorded. The CLI, the
dashboard, the retrainer and the start-up fallback all go through it, so "what is active" has one source.
A kind a service can go without (the upscaler) may also serve nothing: ``switch_off`` records its none version
(training/registry.py) the same way, and rolling back past the kind's first promotion goes there.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from generator.active_model import ActiveModel, keep_copy, point_to, point_to_none, read_active, read_pointer
from generator.model_check import check_weights
from generator.model_kinds import KINDS
from generator.weights import read_metadata, weights_version
from generator.worker_process import WorkerFailed
from training import registry
from training.registry import ModelRecord
from training.sql import SqlDatabase

if TYPE_CHECKING:
    from generator.service import DrawingService

log = logging.getLogger(__name__)


@dataclass
class Lifecycle:
    data_dir: Path
    db: SqlDatabase  # the bot's database (its store's), where the registry lives
    defaults: Mapping[str, Path | None]  # what serves of each kind while none was promoted: configured or bundled
    services: list[DrawingService] = field(default_factory=list)  # this process's: switched before it is recorded

    def attach(self, service: DrawingService) -> None:
        """Switch ``service`` (a generator service of this process) to every model promoted here before the
        promotion is recorded and reported, so the next picture after "promoted" is drawn by it; services of
        other processes follow the pointer within seconds."""
        self.services.append(service)

    async def promote_file(self, source: Path, actor: str, reason: str) -> ActiveModel:
        """Check ``source`` and keep a copy of it, register it (as a candidate, unless its version is known), then
        ``promote`` it; its kind is the one its architecture names. ValueError says why it was refused."""
        kept = await asyncio.to_thread(keep_copy, self.data_dir, source)
        await registry.register(self.db, kept.kind, kept.version, kept.weights)
        return await self._switch(kept, actor, reason)

    async def promote(self, kind: str, version: str, actor: str, reason: str) -> ActiveModel:
        """Make the registered ``version`` the active model of ``kind`` (see the module docstring). ValueError when
        it is unknown, of another kind, without weights, or they fail the check; WorkerFailed when a service
        refused it. Either way nothing changed."""
        record = await registry.get(self.db, version)
        if record is None or record.kind != kind:
            raise ValueError(f"there is no {kind} model {version!r}")
        if record.path is None or not record.path.is_file():
            raise ValueError(f"{version} has no weights file left")
        return await self._switch(await asyncio.to_thread(keep_copy, self.data_dir, record.path), actor, reason)

    async def _switch(self, kept: ActiveModel, actor: str, reason: str) -> ActiveModel:
        """Serve the checked copy ``kept`` here, record the promotion, then point other processes at it."""
        for service in self.services:
            await service.promote(kept.weights, kept.kind)
        await registry.promote(self.db, kept.kind, kept.version, actor, reason, kept.weights)
        await self.derive_pointer()
        return kept

    async def rollback(self, version: str | None, actor: str, kind: str = "face") -> str:
        """Serve ``version`` again (default: the model of ``kind`` that served before the current one); a readable
        answer, or ValueError saying why not."""
        await self.serving(kind)
        target = await registry.get(self.db, version) if version else \
            next(iter(await registry.retired(self.db, kind)), None) or await self._default_record(kind) or \
            await self._none_record(kind)
        if target is None:
            raise ValueError(f"there is no model {version!r}" if version else
                             "there is no earlier model" if kind == "face" else f"there is no earlier {kind} model")
        if target.state == "active":
            raise ValueError(f"{target.version} is already the active model")
        later = "" if self.services else " (running bots switch within seconds)"
        try:
            if target.version == registry.none_version(target.kind):
                await self.switch_off(target.kind, actor, f"rolled back by {actor}")
                return f"Rolled back: no {target.kind} model serves now{later}."
            await self.promote(target.kind, target.version, actor, f"rolled back by {actor}")
        except WorkerFailed as e:
            raise ValueError(f"the generator refused {target.version}: {e}") from None
        return f"Rolled back: {target.version} draws again{later}."

    async def switch_off(self, kind: str, actor: str, reason: str) -> None:
        """No model of ``kind`` serves from now on (the upscaler: faces are enlarged with Lanczos): this process's
        services drop it, the registry records the kind's none version as the active one, and the pointer loses
        the kind, so other processes' services drop it too."""
        for service in self.services:
            await service.promote(None, kind)
        version = registry.none_version(kind)
        await registry.register(self.db, kind, version, None)
        await registry.promote(self.db, kind, version, actor, reason, None)
        await self.derive_pointer()

    async def _none_record(self, kind: str) -> ModelRecord | None:
        """The none version of ``kind`` (registered now, if it was not) when a promoted model of a kind that may go
        without one (not required, none configured or bundled) serves: what served before its first promotion."""
        if KINDS[kind].required or self.defaults.get(kind) or read_active(self.data_dir, kind) is None:
            return None
        await registry.register(self.db, kind, registry.none_version(kind), None)
        return await registry.get(self.db, registry.none_version(kind))

    async def _default_record(self, kind: str) -> ModelRecord | None:
        """The configured or bundled model of ``kind`` (registered now, if it was not) when a promoted one serves
        instead of it: what served before the first promotion of the kind."""
        path, active = self.defaults.get(kind), read_active(self.data_dir, kind)
        if path is None or active is None or not path.is_file():
            return None
        version = weights_version(path, read_metadata(path))
        if version == active.version:
            return None
        await registry.register(self.db, kind, version, path)
        return await registry.get(self.db, version)

    async def serving(self, kind: str = "face") -> tuple[str, Path] | None:
        """(version, weights) of the model of ``kind`` that serves now (the promoted one, else the configured or
        bundled one), recorded in the registry if it was not; None when nothing of the kind serves."""
        active = read_active(self.data_dir, kind)
        path = active.weights if active else self.defaults.get(kind)
        if path is None:
            return None
        version = active.version if active else weights_version(path, read_metadata(path))
        await registry.ensure_active(self.db, version, path, kind=kind)
        return version, path

    async def derive_pointer(self) -> None:
        """Point each kind at its newest recorded promotion, where the pointer names something else (after a
        promotion, or a process that stopped between recording and pointing)."""
        latest = await registry.latest_promotions(self.db)
        pointed, _ = await asyncio.to_thread(read_pointer, self.data_dir)
        for kind, p in latest.items():
            now = pointed.get(kind)
            if p.path is None:  # the kind was switched off
                if now is not None:
                    await asyncio.to_thread(point_to_none, self.data_dir, kind, p.version)
            elif now is None or (now.version, now.weights) != (p.version, p.path):
                at = datetime.fromisoformat(p.at.replace("Z", "+00:00")).timestamp()
                await asyncio.to_thread(point_to, self.data_dir, ActiveModel(p.path, p.version, at, kind))

    async def recover(self, actor: str) -> None:
        """At start: each promoted model whose weights no longer load or draw gives way to the newest earlier
        version of its kind that does (else the configured or bundled one), logged and recorded as a promotion
        by ``actor``; the damaged version is marked failed. With nothing to fall back to, it stays (the
        generator then says what is wrong)."""
        await self.derive_pointer()
        promoted, problem = await asyncio.to_thread(read_pointer, self.data_dir)
        if problem:
            log.error("%s", problem)
        for kind, active in promoted.items():
            try:
                await asyncio.to_thread(check_weights, active.weights, kind)
                continue
            except ValueError as e:
                damage = f"the active {kind} model {active.version} does not load: {e}"
            instead = await self._fall_back(kind, actor, damage)
            if instead is None:
                log.error("%s; there is nothing to fall back to", damage)
                continue
            await registry.set_state(self.db, active.version, "failed", damage)
            log.error("%s; %s serves instead", damage, instead)

    async def _fall_back(self, kind: str, actor: str, why: str) -> str | None:
        """Promote the newest version of ``kind`` that served before and passes the check, else the configured or
        bundled one; its version, or None when none does."""
        for record in await registry.retired(self.db, kind):
            if version := await self._promoted(record, actor, why):
                return version
        default = await self._default_record(kind)
        return await self._promoted(default, actor, why) if default else None

    async def _promoted(self, record: ModelRecord, actor: str, why: str) -> str | None:
        """``record`` promoted: its version, or None when it was refused."""
        try:
            return (await self.promote(record.kind, record.version, actor, why)).version
        except (ValueError, WorkerFailed):
            return None
