"""A tiny untrained generator and a whole Core on a temporary database, for fast bot tests."""

from __future__ import annotations

import asyncio
import contextlib
import random
from pathlib import Path
from typing import TYPE_CHECKING, AsyncIterator

import torch

from bot.commands import COMMANDS
from bot.core import Core
from bot.curation import CurationRules
from bot.limits import Limits
from bot.registry import Registry
from bot.store import Store
from bot.store.database import Database, open_database
from generator.active_model import ActiveModel
from generator.model_kinds import KINDS
from generator.models.acgan import ACGANConfig, Generator
from generator.models.sketch_gan import SketchGANConfig, SketchToFace
from generator.models.upscaler import Upscaler, UpscalerConfig
from generator.service import GeneratorService, ServiceOptions
from generator.weights import save_module
from training.lifecycle import Lifecycle

if TYPE_CHECKING:
    from bot.retraining import Retrainer


def tiny_weights(path: Path, *, g_ch: int = 4, seed: int = 0, version: str = "test-v1") -> Path:
    """An untrained generator saved as training exports it (``g_ch=96`` makes a slow one)."""
    torch.manual_seed(seed)
    G = Generator(ACGANConfig(g_ch=g_ch))
    save_module(G, path, G.cfg.to_dict(), step=seed, version=version)
    return path


def tiny_sketch_weights(path: Path, *, seed: int = 0, version: str = "sketch-v1") -> Path:
    """An untrained, narrow sketch-to-face generator saved as its trainer exports it."""
    torch.manual_seed(seed)
    G = SketchToFace(SketchGANConfig(g_ch=4, style_dim=8))
    save_module(G, path, G.cfg.to_dict(), step=seed, version=version)
    return path


def tiny_upscaler_weights(path: Path, *, seed: int = 0, version: str = "up-v1", nan: bool = False) -> Path:
    """A narrow 2x upscaler whose output layer is random (an untrained one is plain enlargement), saved as its
    trainer exports it; ``nan``: its weights are NaN."""
    torch.manual_seed(seed)
    up = Upscaler(UpscalerConfig(ch=4, convs=1))
    with torch.no_grad():
        torch.nn.init.normal_(up.body[-2].weight, std=0.1)
        if nan:
            up.body[0].weight.fill_(float("nan"))
    save_module(up, path, up.cfg.to_dict(), step=seed, version=version)
    return path


@contextlib.asynccontextmanager
async def database(data_dir: Path) -> AsyncIterator[Database]:
    """The bot's database in ``data_dir`` (its SQLite file), closed after the block."""
    db = await open_database(data_dir / "moebot.db")
    try:
        yield db
    finally:
        await db.close()


def lifecycle(data_dir: Path, db: Database, *services: GeneratorService) -> Lifecycle:
    """The model lifecycle of a bot on ``data_dir`` and ``db``, the bundled weights its defaults."""
    return Lifecycle(data_dir, db, {name: kind.bundled for name, kind in KINDS.items()}, list(services))


async def promote_file(data_dir: Path, weights: Path) -> ActiveModel:
    """Promote ``weights`` as `moebot models promote` does (running services follow the pointer)."""
    async with database(data_dir) as db:
        return await lifecycle(data_dir, db).promote_file(weights, "test", "promoted by a test")


def promote(data_dir: Path, weights: Path) -> ActiveModel:
    return asyncio.run(promote_file(data_dir, weights))


async def make_core(data_dir: Path, *, cooldown_s: float = 0.0, chat_per_minute: int = 1000, clock=None,
                    weights: Path | None = None, sketch_weights: Path | None = None, admins: tuple[str, ...] = (),
                    curation: CurationRules = CurationRules(), retrainer: Retrainer | None = None,
                    commands: Registry = COMMANDS, max_count: int = 4, **options) -> Core:
    """A Core with a real SQLite store in ``data_dir`` and a started GeneratorService (on ``weights`` and
    ``sketch_weights``, else tiny ones; ``options`` are ServiceOptions); close both with ``await closed(core)``."""
    weights = weights or tiny_weights(data_dir / "tiny.safetensors")
    sketch_weights = sketch_weights or tiny_sketch_weights(data_dir / "tiny-sketch.safetensors")
    service = await GeneratorService({"face": weights, "sketch": sketch_weights},
                                     ServiceOptions(**{"threads": 1, **options})).start()
    store = await Store.open(data_dir / "moebot.db", data_dir)
    limits = Limits(store.db, cooldown_s, chat_per_minute, **({"clock": clock} if clock else {}))
    return Core(store, service, limits, commands=commands, max_count=max_count, display_size=64, morph_frames=3,
                admins=admins, curation=curation, retrainer=retrainer, rng=random.Random(0))


async def closed(core: Core) -> None:
    """Close the store, then the service the test started."""
    await core.close()
    await core.generator.close()
