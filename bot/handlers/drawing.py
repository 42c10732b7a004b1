"""Drawing: /waifu, /grid and /morph, and the path every drawn picture takes (limits, queue, store, reply)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Literal

from bot import pictures
from bot.core import Attachment, Buttons, Call, Core, OnQueued, Reply, Who
from bot.registry import MAX_SEED, Choice, Colour, Number, Spec, seed
from bot.store import NewPicture
from generator.requests import (FaceRequest, GenerationFailed, GridRequest, MorphRequest, Pictures, QueueFull,
                                Request)
from generator.tags import EYE_COLORS, HAIR_COLORS, N_EYE, N_HAIR

log = logging.getLogger(__name__)

HAIR = Colour("hair", "hair", "hair colour (random if empty)")
EYE = Colour("eye", "eye", "eye colour (random if empty)")
GRID_MODES = {"hair": ("change-hair", N_HAIR), "eye": ("change-eye", N_EYE), "all": ("fix-noise", N_HAIR * N_EYE)}


@dataclass(frozen=True)
class Waifu:
    hair: int | None = None  # None = a random colour
    eye: int | None = None
    count: int = 1
    seed: int | None = None  # None = a random seed


@dataclass(frozen=True)
class Grid:
    mode: Literal["hair", "eye", "all"] = "all"
    hair: int | None = None
    eye: int | None = None
    seed: int | None = None


@dataclass(frozen=True)
class Morph:
    hair: int | None = None
    eye: int | None = None
    hair2: int | None = None
    eye2: int | None = None
    seed: int | None = None
    seed2: int | None = None


@dataclass(frozen=True)
class Job:
    """One drawing, its random parts already chosen: what to ask the service, and how to present the answer.

    The model version is only known once the service answers (a promotion may swap models meanwhile),
    so the picture record and the caption take it last.
    """
    request: Request
    render: Callable[[Pictures], bytes]  # CPU work (bot.pictures): run on the generator service's encoder threads
    suffix: str  # '.png' or '.gif'
    picture: Callable[..., NewPicture]  # takes model_version=
    head: str  # the caption's first line, before the model version
    again: str  # the command that draws the same picture again
    faces: int  # rows the service draws for it
    notes: tuple[str, ...] = ()  # what the user should know about how their input was read

    def caption(self, version: str) -> str:
        return "\n".join([f"{self.head} · model {version}", f"Again: {self.again}", *self.notes])


def pair_text(hair: int, eye: int) -> str:
    return f"{HAIR_COLORS[hair]} hair, {EYE_COLORS[eye]} eyes"


def chosen(core: Core, value: int | None, choices: int) -> int:
    """``value``, or a random one of ``choices`` chosen now, on the loop, so the caption can say it."""
    return value if value is not None else core.rng.randrange(choices)


async def picture_meta(core: Core, who: Who, **extra: Any) -> dict[str, Any]:
    """Who a picture was drawn for, as its record keeps it."""
    user = await core.store.user(who.platform, who.user_id, who.user_name)
    return dict(platform=who.platform, chat_id=who.chat_id, user_id=user, **extra)


async def draw(core: Core, call: Call, job: Callable[[dict[str, Any]], Job]) -> Reply:
    """Take the user's drawing turn, then draw the job made from the picture's record fields."""
    refusal = await core.limits.take(call.who.user_key, call.who.chat_key)
    if refusal:
        return Reply(refusal, refusal=True)
    return await run_job(core, call.who, job(await picture_meta(core, call.who)), call.on_queued)


async def run_job(core: Core, who: Who, job: Job, on_queued: OnQueued | None) -> Reply:
    """Draw a job whose limits were taken, store the picture and answer with it and its vote buttons."""
    try:
        drawn = await _submit(core, job, _quietly(on_queued))
    except QueueFull as e:
        await core.limits.give_back(who.user_key, who.chat_key)
        return Reply(f"I'm busy drawing for others — try again in {e.retry_after} s.", refusal=True)
    except (GenerationFailed, asyncio.TimeoutError) as e:
        log.warning("drawing for %s failed: %s", who.user_key, str(e) or "timed out")
        await core.limits.give_back(who.user_key, who.chat_key)
        return Reply("The generator hiccuped on that picture — please try again.", refusal=True)
    data = await core.generator.encode(job.render, drawn, job.faces)
    picture_id = await core.store.add_picture(data, job.suffix, job.picture(model_version=drawn.version))
    return Reply(job.caption(drawn.version), [Attachment(f"moebot-{picture_id}{job.suffix}", data)],
                 Buttons(picture_id, 0, 0))


async def _submit(core: Core, job: Job, on_queued: OnQueued | None) -> Pictures:
    """Hand the job to the service; ``on_queued(position)`` is awaited when others are ahead of it."""
    ahead = core.waiting() if core.will_wait(job.faces) else 0
    drawing = asyncio.ensure_future(core.generator.pictures(job.request))
    try:
        await asyncio.sleep(0)  # one turn of the loop: the service queues the request or refuses it at once
        if ahead and on_queued is not None and not drawing.done():
            await on_queued(ahead)
        return await drawing
    finally:
        drawing.cancel()  # a no-op once done; drops the request if we were cancelled meanwhile


async def waifu(core: Core, call: Call) -> Reply:
    command: Waifu = call.command

    def job(base: dict[str, Any]) -> Job:
        hair, eye = chosen(core, command.hair, N_HAIR), chosen(core, command.eye, N_EYE)
        first, n = chosen(core, command.seed, MAX_SEED + 1), command.count
        shown = f"seed {first}" if n == 1 else f"seeds {first}–{first + n - 1}"
        again = f"/waifu {HAIR_COLORS[hair]} {EYE_COLORS[eye]}" + (f" {n}" if n > 1 else "") + f" seed:{first}"
        request = FaceRequest((hair,) * n, (eye,) * n, tuple(range(first, first + n)), core.display_size)
        picture = partial(NewPicture, "face" if n == 1 else "grid", **base, tags=pair_text(hair, eye), count=n,
                          hair=hair, eye=eye, seed=first)
        return Job(request, pictures.faces_png, ".png", picture, f"{pair_text(hair, eye)} · {shown}", again, n)
    return await draw(core, call, job)


async def grid(core: Core, call: Call) -> Reply:
    command: Grid = call.command

    def job(base: dict[str, Any]) -> Job:
        hair, eye = chosen(core, command.hair, N_HAIR), chosen(core, command.eye, N_EYE)
        first = chosen(core, command.seed, MAX_SEED + 1)
        mode, n_faces = GRID_MODES[command.mode]
        cell = 64 if command.mode == "all" else min(core.display_size, 128)
        what = {"hair": f"every hair colour, {EYE_COLORS[eye]} eyes",
                "eye": f"{HAIR_COLORS[hair]} hair, every eye colour",
                "all": "every hair colour (rows) × every eye colour (columns)"}[command.mode]
        again = f"/grid {command.mode} {HAIR_COLORS[hair]} {EYE_COLORS[eye]} seed:{first}"
        picture = partial(NewPicture, "grid", **base, tags=what, count=n_faces, hair=hair, eye=eye, seed=first)
        return Job(GridRequest(mode, hair, eye, first, cell), pictures.grid_png, ".png", picture,
                   f"{what} · seed {first}", again, n_faces)
    return await draw(core, call, job)


async def morph(core: Core, call: Call) -> Reply:
    command: Morph = call.command

    def job(base: dict[str, Any]) -> Job:
        start = (chosen(core, command.hair, N_HAIR), chosen(core, command.eye, N_EYE),
                 chosen(core, command.seed, MAX_SEED + 1))
        end = (chosen(core, command.hair2, N_HAIR), chosen(core, command.eye2, N_EYE),
               chosen(core, command.seed2, MAX_SEED + 1))
        (hair, eye, seed1), (hair2, eye2, seed2) = start, end
        again = f"/morph {HAIR_COLORS[hair]} {EYE_COLORS[eye]} {HAIR_COLORS[hair2]} {EYE_COLORS[eye2]} " \
                f"seed:{seed1} seed2:{seed2}"
        frames = core.morph_frames
        picture = partial(NewPicture, "morph", **base, tags=f"{pair_text(hair, eye)} → {pair_text(hair2, eye2)}",
                          count=frames, hair=hair, eye=eye, seed=seed1)
        return Job(MorphRequest(start, end, frames, min(core.display_size, 256)), pictures.morph_gif, ".gif",
                   picture, f"{pair_text(hair, eye)} (seed {seed1}) → {pair_text(hair2, eye2)} (seed {seed2})", again,
                   frames)
    return await draw(core, call, job)


def _quietly(on_queued: OnQueued | None) -> OnQueued | None:
    """A failed "you are #N" notice must not fail the drawing itself."""
    if on_queued is None:
        return None

    async def notify(position: int) -> None:
        try:
            await on_queued(position)
        except Exception:
            log.warning("could not tell the user their queue position", exc_info=True)
    return notify


SPECS = (
    Spec("waifu", "draw faces, e.g. /waifu pink blue, /waifu blonde 4", waifu, type=Waifu, drawing=True, args=(
        HAIR, EYE, Number("count", 1, "max_count", "how many faces", hint="(to choose a seed, write seed:{value})"),
        seed()), descriptions={"ko": "얼굴을 그립니다. 예: /waifu 분홍 파랑", "ja": "顔を描きます。例: /waifu ピンク 青",
                               "zh-CN": "画一张脸，例如 /waifu 粉色 蓝色", "fr": "dessine des visages, ex. /waifu rose bleu"}),
    Spec("grid", "one face in every hair colour, eye colour or pair", grid, type=Grid, drawing=True, args=(
        Choice("mode", tuple(GRID_MODES), "all", "which colours change across the grid", {"eyes": "eye"}),
        HAIR, EYE, seed()),
        descriptions={"ko": "한 얼굴을 모든 머리색, 눈색 또는 조합으로", "ja": "同じ顔を全ての髪色・目の色・組み合わせで",
                      "zh-CN": "同一张脸的所有发色、瞳色或组合", "fr": "un visage dans chaque couleur de cheveux, d'yeux ou paire"}),
    Spec("morph", "an animated GIF morphing between two faces", morph, type=Morph, drawing=True, args=(
        HAIR, EYE, Colour("hair2", "hair", "the last face's hair colour"),
        Colour("eye2", "eye", "the last face's eye colour"), seed(), seed("seed2", "the last face's seed")),
        descriptions={"ko": "두 얼굴 사이를 변하는 움직이는 GIF", "ja": "二つの顔の間を変化するアニメGIF",
                      "zh-CN": "在两张脸之间变换的动图", "fr": "un GIF animé qui passe d'un visage à l'autre"}),
)
