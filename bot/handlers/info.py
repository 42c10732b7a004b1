"""Commands that only read: /top, /stats, /colors, /help."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal

from bot import colors
from bot.core import Attachment, Call, Core, Reply
from bot.registry import Choice, Spec

log = logging.getLogger(__name__)

PERIODS = {"day": "today", "week": "this week", "all": "of all time"}


@dataclass(frozen=True)
class Top:
    period: Literal["day", "week", "all"] = "week"


async def top(core: Core, call: Call) -> Reply:
    period = call.command.period
    since = None if period == "all" else datetime.now(timezone.utc) - timedelta(days=1 if period == "day" else 7)
    best = await core.store.top(since, core.top_size)
    if not best:
        return Reply(f"No votes {PERIODS[period]} yet — press 👍 under a picture you like.")
    lines = [f"Best-voted pictures {PERIODS[period]}:"]
    files = []
    for rank, p in enumerate(best, 1):
        lines.append(f"{rank}. {p.tags} · seed {p.seed} · 👍 {p.up} 👎 {p.down}")
        try:
            data = await asyncio.to_thread(p.path.read_bytes)
            files.append(Attachment(f"top{rank}-{p.id}{p.path.suffix}", data))
        except OSError:
            log.warning("picture file %s is missing", p.path)
    return Reply("\n".join(lines), files)


async def stats(core: Core, call: Call) -> Reply:
    t = await core.store.totals()
    text = (f"Pictures made: {t.pictures}\nVotes: {t.votes} from {t.voters} people\n"
            f"Dataset: {t.dataset} faces\nModel: {core.model_version}\n"
            f"Queue: {core.waiting()} drawing or waiting")
    if core.is_admin(call.who):
        text += f"\nGenerator: {core.generator.metrics.text()}"
        if core.storage_full_at is not None:
            text += f"\n⚠ The disk was full at {core.storage_full_at:%Y-%m-%d %H:%M} UTC: writes failed " \
                    f"(make room where {core.store.data_dir} is)"
    return Reply(text)


async def colour_table(core: Core, call: Call) -> Reply:
    return Reply(colors.colour_table())


async def help_text(core: Core, call: Call) -> Reply:
    return Reply(core.commands.help_text())


TOP = Spec("top", "the best-voted pictures", top, type=Top, args=(
    Choice("period", tuple(PERIODS), "week", "the votes of today, this week or all time"),),
    descriptions={"ko": "가장 많은 추천을 받은 그림", "ja": "いちばん票を集めた絵", "zh-CN": "得票最多的图片",
                  "fr": "les images les mieux notées"})
STATS = Spec("stats", "pictures made, votes, dataset size, model version", stats,
             descriptions={"ko": "그린 그림, 투표, 데이터셋 크기, 모델 버전", "ja": "描いた枚数・投票・データセット・モデルの版",
                           "zh-CN": "已画图片、投票、数据集大小、模型版本",
                           "fr": "images dessinées, votes, taille du jeu de données, version du modèle"})
COLORS = Spec("colors", "every colour word I understand", colour_table,
              descriptions={"ko": "알아듣는 모든 색 이름", "ja": "使える色の名前の一覧", "zh-CN": "我能理解的所有颜色词",
                            "fr": "tous les noms de couleurs que je comprends"})
HELP = Spec("help", "this list", help_text, aliases=("start",),
            descriptions={"ko": "명령어 목록", "ja": "コマンド一覧", "zh-CN": "命令列表", "fr": "la liste des commandes"})
Stats, Colors, Help = STATS.type, COLORS.type, HELP.type
