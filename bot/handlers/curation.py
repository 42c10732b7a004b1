"""Curation: /review and its buttons, tag cards, /forget, and approving, rejecting and re-tagging an item, the
one implementation the chat buttons and the dashboard (``bot.web.dashboard``) share."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from bot import pictures
from bot.core import ACTION_ID, Attachment, Call, Core, Pressed, Reply
from bot.registry import Spec
from bot.store import Item, Store
from generator.tags import EYE_COLORS, HAIR_COLORS, N_EYE, N_HAIR

log = logging.getLogger(__name__)

REVIEW_BATCH = 3  # items /review shows at once
HAIR_ROW, EYE_ROW = 4, 5  # colours a row of a tag card: N_HAIR / 4 + N_EYE / 5 rows, Discord's most is five


@dataclass(frozen=True)
class Decided:
    """What approving or rejecting an item did: ``refusal`` says why nothing changed (None: it was decided)."""
    verb: str  # 'approved' or 'rejected'
    refusal: str | None = None
    gone: bool = False  # the item no longer exists


async def decide(store: Store, image_id: int, approve: bool, actor: str, where: str) -> Decided:
    """Approve (curate) or reject a pending item, logged in the curation log as done by ``actor`` in ``where``."""
    status, verb = ("curated", "approved") if approve else ("rejected", "rejected")
    before = await store.decide_item(image_id, status, actor, f"{verb} in {where}")
    if before is None:
        return Decided(verb, f"Item #{image_id} no longer exists.", gone=True)
    if before != "pending":
        return Decided(verb, f"Item #{image_id} is already {before}.")
    return Decided(verb)


def is_colour(part: str, index: object) -> bool:
    """Whether ``index`` is one of the model's colours for ``part`` ('hair' or 'eye')."""
    return isinstance(index, int) and 0 <= index < (N_HAIR if part == "hair" else N_EYE)


def tags_text(hair: int | None, eye: int | None) -> str:
    return f"{HAIR_COLORS[hair]} hair, {EYE_COLORS[eye]} eyes" if hair is not None and eye is not None else "untagged"


def describe(item: Item) -> str:
    """One line an admin reviews an item by."""
    return (f"Item #{item.id} · {tags_text(item.hair, item.eye)} · {item.status} · 👍 {item.up} 👎 {item.down} · "
            f"from {item.source}")


def tag_card(item: Item) -> Reply:
    """The item's tags with a button per colour (the current ones ticked): one press changes hair or eyes."""
    def row(part: str, names: tuple[str, ...] | list[str], current: int | None, start: int, n: int) -> tuple:
        noun = "hair" if part == "h" else "eyes"
        return tuple((f"{'✓ ' if i == current else ''}{names[i]} {noun}", f"tag:{item.id}:{part}:{i}")
                     for i in range(start, min(start + n, len(names))))
    rows = tuple(row("h", HAIR_COLORS, item.hair, i, HAIR_ROW) for i in range(0, N_HAIR, HAIR_ROW))
    rows += tuple(row("e", EYE_COLORS, item.eye, i, EYE_ROW) for i in range(0, N_EYE, EYE_ROW))
    return Reply(f"Tags of item #{item.id}: {tags_text(item.hair, item.eye)}. Wrong? Press the right hair "
                 "colour, then the right eye colour.", actions=rows)


async def review(core: Core, call: Call) -> Reply:
    """The oldest pending items, one message each with approve / reject / re-tag buttons."""
    items = await core.store.pending(REVIEW_BATCH)
    if not items:
        return Reply("Nothing is waiting for review.")
    cards = []
    for item in items:
        rows = ((("✅ approve", f"rev:{item.id}:ok"), ("❌ reject", f"rev:{item.id}:no"),
                 ("🏷 re-tag", f"rev:{item.id}:tag")),)
        cards.append(Reply(describe(item), await _face_files(core, item), actions=rows))
    return Reply(f"The {len(items)} oldest items waiting for review:", more=tuple(cards))


async def _face_files(core: Core, item: Item) -> list[Attachment]:
    """The item's 64x64 face at display size, or nothing when its file is missing."""
    try:
        return [Attachment(f"item-{item.id}.png",
                           await asyncio.to_thread(pictures.face_file_png, item.path, core.display_size))]
    except OSError:
        log.warning("face file %s of item %d is missing", item.path, item.id)
        return []


async def press(core: Core, call: Call) -> Pressed:
    """A review button (admins: approve, reject, re-tag) or a tag card's colour (admins, or the submitter
    while the item is pending); ``call.command`` is the button's id."""
    m = ACTION_ID.match(call.command)
    if m.group(1):
        return await _review_press(core, call, int(m.group(1)), m.group(2))
    return await _tag_press(core, call, int(m.group(3)), m.group(4), int(m.group(5)))


async def _review_press(core: Core, call: Call, image_id: int, what: str) -> Pressed:
    if not core.is_admin(call.who):
        return Pressed("Sorry, only the bot's admins can approve, reject or re-tag items.")
    item = await core.store.item(image_id)
    if item is None:
        return Pressed(f"Item #{image_id} no longer exists.", rows=())
    if what == "tag":
        return Pressed("Pick the right colours.", reply=tag_card(item))
    decided = await decide(core.store, image_id, what == "ok", call.who.user_key, "/review")
    if decided.refusal:
        return Pressed(decided.refusal, rows=())
    mark = "✅" if what == "ok" else "❌"
    return Pressed(f"Item #{image_id} {decided.verb}.",
                   f"{describe(item)}\n{mark} {decided.verb} by {call.who.user_name}", ())


async def _tag_press(core: Core, call: Call, image_id: int, part: str, index: int) -> Pressed:
    who = call.who
    item = await core.store.item(image_id)
    if item is None:
        return Pressed(f"Item #{image_id} no longer exists.", rows=())
    if not core.is_admin(who):
        user = await core.store.user(who.platform, who.user_id, who.user_name)
        if item.user_id != user:
            return Pressed("Only the person who sent it, or an admin, can change its tags.")
        if item.status != "pending":
            return Pressed(f"Item #{image_id} is {item.status} already; an admin can still re-tag it.")
    noun = "hair" if part == "h" else "eye"
    if not is_colour(noun, index):
        return Pressed("That colour doesn't exist any more.")
    await core.store.retag(image_id, who.user_key, **{noun: index})
    card = tag_card(await core.store.item(image_id) or item)
    names = HAIR_COLORS if part == "h" else EYE_COLORS
    return Pressed(f"{'Hair' if part == 'h' else 'Eyes'}: {names[index]}", card.text, card.actions)


async def forget(core: Core, call: Call) -> Reply:
    who = call.who
    user = await core.store.user(who.platform, who.user_id, who.user_name)
    gone = await core.store.forget(user, who.user_key)
    counted = [(gone.submissions, "submission", "submissions"),
               (gone.uploads, "uploaded drawing", "uploaded drawings"),
               (gone.pictures, "picture showing what you sent", "pictures showing what you sent"),
               (gone.votes_on_them, "vote by others on those", "votes by others on those"),
               (gone.votes, "vote of yours", "votes of yours")]
    if not any(n for n, _, _ in counted):
        return Reply("I had nothing of yours to delete: no submissions, uploads or votes.")
    lines = ["Done — I deleted:"] + [f"• {n} {one if n == 1 else many}" for n, one, many in counted if n]
    lines.append(f"{gone.training_items} training item{'s' * (gone.training_items != 1)} left the training "
                 "data for good (models already trained keep what they learnt). Pictures I drew for you "
                 "stay: they hold nothing you sent.")
    return Reply("\n".join(lines))


FORGET = Spec("forget", "delete everything you sent me, and your votes", forget)
REVIEW = Spec("review", "admins: approve, reject or re-tag waiting training items", review, admin=True)
Forget, Review = FORGET.type, REVIEW.type
