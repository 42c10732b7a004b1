"""A tiny untrained generator and a whole Core on a temporary database, for fast bot tests."""

from __future__ import annotations

import random
from pathlib import Path

import torch

from bot.core import Core
from bot.limits import Limits
from bot.store import Store
from bot.worker import Worker
from generator.models.acgan import ACGANConfig, Generator
from generator.sampler import FaceSampler


def tiny_sampler() -> FaceSampler:
    torch.manual_seed(0)
    return FaceSampler(Generator(ACGANConfig(g_ch=4)), "test-v1")


async def make_core(data_dir: Path, *, cooldown_s: float = 0.0, chat_per_minute: int = 1000, queue_size: int = 8,
                    sampler: FaceSampler | None = None, clock=None) -> Core:
    """A Core with a real SQLite store in ``data_dir``; close it with ``await core.close()``."""
    store = await Store.open(data_dir / "moebot.db", data_dir)
    limits = Limits(cooldown_s, chat_per_minute, **({"clock": clock} if clock else {}))
    return Core(store, Worker(sampler or tiny_sampler(), queue_size), limits, display_size=64, morph_frames=3,
                rng=random.Random(0))
