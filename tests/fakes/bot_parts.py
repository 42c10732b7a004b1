"""A tiny untrained generator and a whole Core on a temporary database, for fast bot tests."""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from bot.core import Core
from bot.curation import CurationRules
from bot.limits import Limits
from bot.store import Store
from generator.models.acgan import ACGANConfig, Generator
from generator.models.sketch_gan import SketchGANConfig, SketchToFace
from generator.service import GeneratorService, ServiceOptions
from generator.weights import save_module

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


async def make_core(data_dir: Path, *, cooldown_s: float = 0.0, chat_per_minute: int = 1000, clock=None,
                    weights: Path | None = None, sketch_weights: Path | None = None, admins: tuple[str, ...] = (),
                    curation: CurationRules = CurationRules(), retrainer: Retrainer | None = None,
                    **options) -> Core:
    """A Core with a real SQLite store in ``data_dir`` and a started GeneratorService (on ``weights`` and
    ``sketch_weights``, else tiny ones; ``options`` are ServiceOptions); close both with ``await closed(core)``."""
    weights = weights or tiny_weights(data_dir / "tiny.safetensors")
    sketch_weights = sketch_weights or tiny_sketch_weights(data_dir / "tiny-sketch.safetensors")
    service = await GeneratorService(weights, ServiceOptions(**{"threads": 1, **options}), sketch_weights).start()
    store = await Store.open(data_dir / "moebot.db", data_dir)
    limits = Limits(cooldown_s, chat_per_minute, **({"clock": clock} if clock else {}))
    return Core(store, service, limits, display_size=64, morph_frames=3, admins=admins, curation=curation,
                retrainer=retrainer, rng=random.Random(0))


async def closed(core: Core) -> None:
    """Close the store, then the service the test started."""
    await core.close()
    await core.generator.close()
