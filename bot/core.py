"""What the bot does, whatever the chat platform: one call per command or button press, one reply back.

Adapters translate a platform event into ``Core.handle`` / ``Core.vote`` and
the returned ``Reply`` / ``VoteResult`` into platform messages; limits, the
generator queue, storage and wording all live here, tested once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Collection, TypeVar

import torch
from PIL import Image

from bot import colors
from bot.commands import (COMMANDS, DRAWING, MAX_SEED, Colors, Command, Forget, Grid, Help, Models, Morph, Retrain,
                          Review, Rollback, Sketch, Stats, Submit, Top, Waifu)
from bot.curation import CurationRules
from bot.limits import Limits
from bot.store import Item, NewPicture, NewUpload, Store, storage_full
from generator.images import from_pil, gif_bytes, grid, png_bytes, side_by_side, to_pil, upscale
from generator.sampler import sketch_tags
from generator.service import DrawingService, GenerationFailed, QueueFull
from generator.face_crop import crop_faces, read_picture
from generator.models.tagger import Tagger
from generator.sketch_input import SketchRejected, UploadLimits, check_size, normalise_sketch, suffix_of
from generator.sketch_input import Sketch as SketchInput
from generator.tags import EYE_COLORS, HAIR_COLORS, N_EYE, N_HAIR
from training.near_duplicates import FaceHashIndex, face_hash
from training.tag_predictor import ColourGuess, TagGuess, complete_tags, load_tagger

if TYPE_CHECKING:
    from bot.retraining import Retrainer, RunOutcome

log = logging.getLogger(__name__)

VOTE_ID = re.compile(r"^vote:(\d{1,18}):(up|down)$")  # also the Telegram callback_data: ≤ 64 bytes
# The buttons of /review (rev:<item>:ok|no|tag) and of a tag card (tag:<item>:h|e:<colour index>)
ACTION_ID = re.compile(r"^(?:rev:(\d{1,18}):(ok|no|tag)|tag:(\d{1,18}):([he]):(\d{1,2}))$")
REVIEW_BATCH = 3  # items /review shows at once
MODELS_SHOWN = 3  # newest versions whose grids /models puts side by side
NO_RETRAINER = "Retraining is not set up here (no [training] in this bot's configuration)."
ADMINS_ONLY = "Sorry, only the bot's admins can use {}."
STORAGE_FULL = "I can't save anything right now: the bot's disk is full, and an admin has to make room. " \
               "Please try again later."
DISK_FULL_NOTICE = "⚠ The bot's disk is full ({}): at {:%Y-%m-%d %H:%M} UTC a write failed; votes, pictures and " \
                   "uploads fail until there is room. (I say this at most once an hour; /stats shows the last time " \
                   "it happened.)"


def vote_id(picture_id: int, up: bool) -> str:
    """The button id that carries a vote across restarts: the picture id and the direction, nothing else."""
    return f"vote:{picture_id}:{'up' if up else 'down'}"


def parse_vote_id(custom_id: str) -> tuple[int, int] | None:
    """(picture id, +1 or -1) from a button id, or None when it is not a vote button."""
    m = VOTE_ID.match(custom_id)
    return (int(m.group(1)), 1 if m.group(2) == "up" else -1) if m else None


@dataclass(frozen=True)
class Who:
    """Who sent a command, and where."""
    platform: str  # 'telegram' or 'discord'
    user_id: str
    user_name: str
    chat_id: str

    @property
    def user_key(self) -> str:
        return f"{self.platform}:{self.user_id}"

    @property
    def chat_key(self) -> str:
        return f"{self.platform}:{self.chat_id}"


@dataclass(frozen=True)
class Attachment:
    filename: str  # ends in .png or .gif
    data: bytes


@dataclass(frozen=True)
class Upload:
    """The picture sent with /sketch. Its bytes are fetched only once the command passed the limits and the
    announced size; ``fetch`` raises SketchRejected (with the reason to show) when the download fails."""
    filename: str
    size: int | None  # bytes, as the platform announced them; None when unknown
    fetch: Callable[[], Awaitable[bytes]]


# A bare /sketch: how to send a drawing, per platform
SKETCH_HOWTO = {
    "telegram": "Send me your drawing as a photo (or an image file) with the caption /sketch — add colours "
                "if you like: /sketch pink blue. Or reply /sketch to a message that has a picture.",
    "discord": "Attach your drawing to /sketch in the image option, and pick colours if you like.",
    "web": "Draw on the pad beside the chat and press Convert, or drop a picture of your drawing on it; "
           "colours go in the box next to Convert.",
}
SKETCH_TIPS = "Dark lines on light paper work best (light on dark is fine too); one face filling the picture."
# A bare /submit: how to send a picture, per platform
SUBMIT_HOWTO = {
    "telegram": "Send me a picture as a photo (or an image file) with the caption /submit — add its colours if you "
                "know them: /submit pink blue. Or reply /submit to a message that has a picture.",
    "discord": "Attach the picture to /submit in the image option, and pick its colours if you know them.",
    "web": "Drop the picture on the box beside the chat (or choose it there) with \"as a face for the training "
           "set\" picked; its colours, if you know them, go in the box next to Convert.",
}
SUBMIT_FACES = 4  # faces of one picture submitted at most
SUBMIT_TIPS = "Anime faces facing the camera work best; I cut each face out and shrink it to 64x64."
DECODERS = 2  # threads that decode uploads: a flood of hostile files waits for these, never for the shared pool
DECODE_TIMEOUT_S = 20.0  # an upload not decoded by then is refused (the largest allowed decodes in about 1 s)
SLOW_UPLOAD = "That picture took too long to read — please send a smaller PNG or JPEG."
NEAR_DUPLICATES = "near-duplicates"  # the lease held while a submission is checked against the training set
NEAR_DUPLICATES_TTL_S = 120.0  # how long a process that died holding it keeps other /submit waiting


@dataclass(frozen=True)
class Buttons:
    """The 👍/👎 pair under a picture, with their counts."""
    picture_id: int
    up: int
    down: int

    def labelled(self) -> list[tuple[str, str]]:
        """(label, button id) for 👍 then 👎."""
        return [(f"👍 {self.up}", vote_id(self.picture_id, True)), (f"👎 {self.down}", vote_id(self.picture_id, False))]


Button = tuple[str, str]  # (label, button id)
Rows = tuple[tuple[Button, ...], ...]


@dataclass(frozen=True)
class Reply:
    text: str
    files: list[Attachment] = field(default_factory=list)
    buttons: Buttons | None = None
    refusal: bool = False  # an explanation for the asker only (Discord: ephemeral)
    actions: Rows = ()  # rows of other buttons (review, tags), below the vote buttons
    more: tuple["Reply", ...] = ()  # further messages sent after this one, e.g. one per item to review


@dataclass(frozen=True)
class Pressed:
    """What a review or tag button did: a short notice for the presser, and the pressed message's new text
    and buttons, or a new message."""
    notice: str
    text: str | None = None  # the message's new text; None keeps it
    rows: Rows | None = None  # its new buttons; None keeps them, () removes them
    reply: Reply | None = None  # a new message (Discord: seen by the presser only)


@dataclass(frozen=True)
class VoteResult:
    notice: str  # the short toast the voter sees
    buttons: Buttons | None  # new counts; None when the picture is unknown


OnQueued = Callable[[int], Awaitable[None]]
Decoded = TypeVar("Decoded")  # what an upload decodes to: a sketch, or a picture to cut faces from


@dataclass(frozen=True)
class Job:
    """One drawing, its random parts already chosen: what to ask the service, and how to present the answer.

    The model version is only known once the service answers (a promotion may swap models meanwhile),
    so the picture record and the caption take it last.
    """
    draw: Callable[[], Awaitable[tuple[Any, str]]]  # -> (what the service drew, the version that drew it)
    encode: Callable[[Any], bytes]  # CPU work: run on the generator service's encoder threads
    suffix: str  # '.png' or '.gif'
    picture: Callable[..., NewPicture]  # takes model_version=
    head: str  # the caption's first line, before the model version
    again: str  # the command that draws the same picture again
    faces: int  # rows the service draws for it
    notes: tuple[str, ...] = ()  # what the user should know about how their input was read

    def caption(self, version: str) -> str:
        return "\n".join([f"{self.head} · model {version}", f"Again: {self.again}", *self.notes])


class Core:
    def __init__(self, store: Store, generator: DrawingService, limits: Limits, *, max_count: int = 4,
                 display_size: int = 256, morph_frames: int = 16, top_size: int = 4,
                 admins: Collection[str] = (), uploads: UploadLimits = UploadLimits(),
                 curation: CurationRules = CurationRules(), retrainer: Retrainer | None = None,
                 rng: random.Random | None = None):
        self.store = store
        self.generator = generator
        self.limits = limits
        self.max_count = max_count
        self.display_size = display_size
        self.morph_frames = morph_frames
        self.top_size = top_size
        self.admins = frozenset(admins)  # "platform:user_id", as Who.user_key
        self.uploads = uploads
        self.curation = curation
        self.retrainer = retrainer  # None: /retrain, /models and /rollback say it is not set up
        if retrainer is not None:
            retrainer.attach(generator)  # a promotion switches this generator before admins are told
        self.storage_full_at: datetime | None = None  # the last write refused for want of space (admins' /stats)
        self._notices: set[asyncio.Task] = set()  # admin notices on their way
        self._rng = rng or random.SystemRandom()
        self._tagger: Tagger | None = None  # the evaluation classifier, loaded by the first /submit
        self._decoders = ThreadPoolExecutor(DECODERS, thread_name_prefix="moebot-decode")

    async def close(self) -> None:
        """Close the database; the generator service belongs to whoever started it."""
        self._decoders.shutdown(wait=False, cancel_futures=True)
        await self.store.close()

    @property
    def model_version(self) -> str:
        return self.generator.version

    def waiting(self) -> int:
        """Requests ahead of a new one: those queued, plus the batch being drawn."""
        m = self.generator.metrics
        return m.queue_requests + (m.in_flight > 0)

    def will_wait(self, faces: int) -> bool:
        """Whether a new request of ``faces`` misses the next batch: only then is a position notice worth a
        message (in a burst most requests share a batch and are drawn within milliseconds)."""
        m = self.generator.metrics
        return m.queue_rows + m.in_flight + faces > self.generator.options.max_batch

    async def handle(self, who: Who, command: Command, on_queued: OnQueued | None = None,
                     upload: Upload | None = None) -> Reply:
        """Run one command (/sketch with the picture sent along); every outcome, failures included, is a Reply
        a user can read."""
        try:
            if isinstance(command, Sketch):
                return await self._sketch(who, command, upload, on_queued)
            if isinstance(command, Submit):
                return await self._submission(who, command, upload)
            if isinstance(command, DRAWING):
                return await self._draw(who, command, on_queued)
            if isinstance(command, Top):
                return await self._top(command)
            if isinstance(command, Stats):
                return await self._stats(who)
            if isinstance(command, Colors):
                return Reply(colors.colour_table())
            if isinstance(command, Help):
                return Reply(help_text())
            if isinstance(command, Review):
                return await self._review(who)
            if isinstance(command, Forget):
                return await self._forget(who)
            if isinstance(command, (Retrain, Models, Rollback)):
                return await self._models_command(who, command)
            raise TypeError(f"no handler for {command!r}")
        except Exception as e:
            if storage_full(e):
                return Reply(self._storage_full(e), refusal=True)
            log.exception("command %r from %s failed", command, who.user_key)
            return Reply("Sorry, something went wrong on my side. Please try again in a moment.", refusal=True)

    async def vote(self, who: Who, custom_id: str) -> VoteResult:
        """Record a button press: one vote per user per picture; the same vote again withdraws it."""
        parsed = parse_vote_id(custom_id)
        if parsed is None:
            return VoteResult("That button is not a vote.", None)
        picture_id, value = parsed
        try:
            user = await self.store.user(who.platform, who.user_id, who.user_name)
            counts = await self.store.vote(picture_id, user, value, self.curation)
        except Exception as e:
            if not storage_full(e):
                raise
            return VoteResult(self._storage_full(e), None)
        if counts is None:
            return VoteResult("I can't find that picture any more.", None)
        mark = "👍" if value > 0 else "👎"
        notice = f"You voted {mark}" if counts.mine == value else "Vote withdrawn"
        if counts.decided:
            notice += " — the votes made it training data" if counts.decided == "curated" else \
                " — the votes keep it out of the training data"
        return VoteResult(notice, Buttons(picture_id, counts.up, counts.down))

    def _storage_full(self, error: BaseException) -> str:
        """Warn the admins (in the log, their /stats, and a chat notice at most hourly) that a write failed for
        want of space; the answer."""
        self.storage_full_at = datetime.now(timezone.utc)
        log.error("storage is full, a write failed: %s (votes, pictures and uploads fail until %s has room)",
                  error, self.store.data_dir)
        if self.retrainer is not None:  # the way admins hear of retraining runs, on every chat platform
            notice = DISK_FULL_NOTICE.format(self.store.data_dir, self.storage_full_at)
            task = asyncio.get_running_loop().create_task(self.retrainer.warn_admins("disk-full", notice))
            self._notices.add(task)
            task.add_done_callback(self._notices.discard)
        return STORAGE_FULL

    def is_admin(self, who: Who) -> bool:
        return who.user_key in self.admins

    def admin_ids(self, platform: str) -> list[str]:
        """The user ids of the admins on one platform, for messages to them (a finished retraining run)."""
        return sorted(key.split(":", 1)[1] for key in self.admins if key.startswith(f"{platform}:"))

    async def press(self, who: Who, custom_id: str) -> Pressed:
        """A review button (admins: approve, reject, re-tag) or a tag card's colour (admins, or the submitter
        while the item is pending); every refusal is a notice the presser reads."""
        m = ACTION_ID.match(custom_id)
        if m is None:
            return Pressed("That button is not one of mine.")
        try:
            if m.group(1):
                return await self._review_press(who, int(m.group(1)), m.group(2))
            return await self._tag_press(who, int(m.group(3)), m.group(4), int(m.group(5)))
        except Exception:
            log.exception("button %r from %s failed", custom_id, who.user_key)
            return Pressed("Sorry, something went wrong on my side. Please try again in a moment.")

    async def _review(self, who: Who) -> Reply:
        """The oldest pending items, one message each with approve / reject / re-tag buttons."""
        if not self.is_admin(who):
            return Reply(ADMINS_ONLY.format("/review"), refusal=True)
        items = await self.store.pending(REVIEW_BATCH)
        if not items:
            return Reply("Nothing is waiting for review.")
        cards = []
        for item in items:
            rows = ((("✅ approve", f"rev:{item.id}:ok"), ("❌ reject", f"rev:{item.id}:no"),
                     ("🏷 re-tag", f"rev:{item.id}:tag")),)
            cards.append(Reply(describe(item), await self._face_files(item), actions=rows))
        return Reply(f"The {len(items)} oldest items waiting for review:", more=tuple(cards))

    async def _face_files(self, item: Item) -> list[Attachment]:
        """The item's 64x64 face at display size, or nothing when its file is missing."""
        def shown() -> bytes:
            with Image.open(item.path) as img:
                return png_bytes(upscale(img.convert("RGB"), self.display_size))
        try:
            return [Attachment(f"item-{item.id}.png", await asyncio.to_thread(shown))]
        except OSError:
            log.warning("face file %s of item %d is missing", item.path, item.id)
            return []

    async def _review_press(self, who: Who, image_id: int, what: str) -> Pressed:
        if not self.is_admin(who):
            return Pressed("Sorry, only the bot's admins can approve, reject or re-tag items.")
        item = await self.store.item(image_id)
        if item is None:
            return Pressed(f"Item #{image_id} no longer exists.", rows=())
        if what == "tag":
            return Pressed("Pick the right colours.", reply=tag_card(item))
        status, verb = ("curated", "approved") if what == "ok" else ("rejected", "rejected")
        before = await self.store.decide_item(image_id, status, who.user_key, f"{verb} in /review")
        if before is None:
            return Pressed(f"Item #{image_id} no longer exists.", rows=())
        if before != "pending":
            return Pressed(f"Item #{image_id} is already {before}.", rows=())
        mark = "✅" if what == "ok" else "❌"
        return Pressed(f"Item #{image_id} {verb}.", f"{describe(item)}\n{mark} {verb} by {who.user_name}", ())

    async def _tag_press(self, who: Who, image_id: int, part: str, index: int) -> Pressed:
        item = await self.store.item(image_id)
        if item is None:
            return Pressed(f"Item #{image_id} no longer exists.", rows=())
        if not self.is_admin(who):
            user = await self.store.user(who.platform, who.user_id, who.user_name)
            if item.user_id != user:
                return Pressed("Only the person who sent it, or an admin, can change its tags.")
            if item.status != "pending":
                return Pressed(f"Item #{image_id} is {item.status} already; an admin can still re-tag it.")
        names = HAIR_COLORS if part == "h" else EYE_COLORS
        if index >= len(names):
            return Pressed("That colour doesn't exist any more.")
        tag = {"hair" if part == "h" else "eye": index}
        await self.store.retag(image_id, who.user_key, **tag)
        card = tag_card(await self.store.item(image_id) or item)
        return Pressed(f"{'Hair' if part == 'h' else 'Eyes'}: {names[index]}", card.text, card.actions)

    async def _forget(self, who: Who) -> Reply:
        user = await self.store.user(who.platform, who.user_id, who.user_name)
        gone = await self.store.forget(user, who.user_key)
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

    async def _models_command(self, who: Who, command: Retrain | Models | Rollback) -> Reply:
        if self.retrainer is None:
            return Reply(NO_RETRAINER, refusal=True)
        if isinstance(command, Models):
            return await self._models()
        if not self.is_admin(who):
            return Reply(ADMINS_ONLY.format("/retrain" if isinstance(command, Retrain) else "/rollback"),
                         refusal=True)
        if isinstance(command, Retrain):
            return Reply(await self.retrainer.start(who.user_key))
        try:
            return Reply(await self.retrainer.rollback(command.version, who.user_key))
        except ValueError as e:
            return Reply(f"I can't roll back: {e}.", refusal=True)

    async def _models(self) -> Reply:
        """Every model version with its state and figures; the newest ones' before/after grids side by side."""
        records = await self.retrainer.models()
        if not records:
            return Reply("No model versions are recorded yet.")
        lines = ["Model versions, newest first:"]
        lines += [f"{r.version} · {r.state}" + (f" (from {r.parent})" if r.parent else "")
                  + ("" if r.kind == "face" else f" · {r.kind}")
                  + (f" · {figures(r.metrics)}" if r.metrics else "") + f" · {r.created_at[:16]}"
                  + (f" — {r.reason}" if r.reason else "") for r in records]
        shown = [r for r in records if r.grid is not None and r.grid.exists()][:MODELS_SHOWN]
        if not shown:
            return Reply("\n".join(lines))
        lines.append("Grids, left to right: " + ", ".join(r.version for r in shown)
                     + " (each: its parent's faces | its own)")

        def picture() -> bytes:
            grids = [Image.open(r.grid).convert("RGB") for r in shown]
            first = grids[0].size
            return png_bytes(grid(torch.stack([from_pil(g.resize(first)) for g in grids]), len(grids)))
        return Reply("\n".join(lines), [Attachment("models.png", await asyncio.to_thread(picture))])

    async def run_report(self, outcome: RunOutcome) -> Reply:
        """What admins are sent when a retraining run ends: its summary and the before/after grid."""
        files = []
        if outcome.grid is not None:
            try:
                files.append(Attachment(f"{outcome.version}.png", await asyncio.to_thread(outcome.grid.read_bytes)))
            except OSError:
                log.warning("grid %s of run %s is missing", outcome.grid, outcome.version)
        return Reply(outcome.text, files)

    async def _draw(self, who: Who, command: Waifu | Grid | Morph, on_queued: OnQueued | None) -> Reply:
        refusal = await self.limits.take(who.user_key, who.chat_key)
        if refusal:
            return Reply(refusal, refusal=True)
        user = await self.store.user(who.platform, who.user_id, who.user_name)
        return await self._run(who, self._job(command, dict(platform=who.platform, chat_id=who.chat_id,
                                                           user_id=user)), on_queued)

    async def _sketch(self, who: Who, command: Sketch, upload: Upload | None, on_queued: OnQueued | None) -> Reply:
        """Read the upload (a refusal says what is wrong with it), keep it, then paint it like any drawing."""
        if not self.generator.serves("sketch"):
            return Reply("I can't paint drawings right now: no sketch model is loaded. Faces still work: /waifu.",
                         refusal=True)
        if upload is None:
            return Reply(f"{SKETCH_HOWTO.get(who.platform, SKETCH_HOWTO['telegram'])}\n{SKETCH_TIPS}", refusal=True)
        read = await self._read_upload(who, upload, normalise_sketch, SKETCH_TIPS)
        if isinstance(read, Reply):
            return read
        data, sketch = read
        user = await self.store.user(who.platform, who.user_id, who.user_name)
        upload_id = await self.store.add_upload(data, sketch.suffix,
                                                NewUpload(user, who.platform, who.chat_id, upload.filename))
        base = dict(platform=who.platform, chat_id=who.chat_id, user_id=user, upload_id=upload_id)
        return await self._run(who, self._sketch_job(command, sketch, base), on_queued)

    async def _read_upload(self, who: Who, upload: Upload, decode: Callable[[bytes, UploadLimits], Decoded],
                           tips: str) -> tuple[bytes, Decoded] | Reply:
        """Take the user's drawing turn, then fetch and decode the upload (off the loop): (bytes, decoded), or
        the refusal to answer with when the limits or the upload say no (the turn is given back then)."""
        refusal = await self.limits.take(who.user_key, who.chat_key)
        if refusal:
            return Reply(refusal, refusal=True)
        try:
            if upload.size is not None:
                check_size(upload.size, self.uploads)  # before downloading it
            data = await upload.fetch()
            return data, await self._decoded(decode, data)
        except SketchRejected as e:
            await self.limits.give_back(who.user_key, who.chat_key)
            return Reply(f"{e}\n{tips}", refusal=True)

    async def _decoded(self, decode: Callable[[bytes, UploadLimits], Decoded], data: bytes) -> Decoded:
        """``decode(data, limits)`` on the upload threads; SketchRejected when it takes over DECODE_TIMEOUT_S (the
        thread then finishes on its own: only formats whose decoding ends are read)."""
        decoding = asyncio.get_running_loop().run_in_executor(self._decoders, decode, data, self.uploads)
        try:
            return await asyncio.wait_for(decoding, DECODE_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise SketchRejected(SLOW_UPLOAD) from None

    async def _submission(self, who: Who, command: Submit, upload: Upload | None) -> Reply:
        """Cut the picture's faces out (the whole picture when none is found; one with nothing drawn in it is
        refused as it is read), leave out those the training set
        has (same pixels, or a near-duplicate), tag the rest (colours given are kept, missing ones read by the
        evaluation classifier) and queue each as a pending item, shown with vote buttons and a tag card."""
        if upload is None:
            return Reply(f"{SUBMIT_HOWTO.get(who.platform, SUBMIT_HOWTO['telegram'])}\n{SUBMIT_TIPS}", refusal=True)
        read = await self._read_upload(who, upload, read_picture, SUBMIT_TIPS)
        if isinstance(read, Reply):
            return read
        data, (picture, animated) = read
        crops = await asyncio.to_thread(crop_faces, picture, SUBMIT_FACES)
        user = await self.store.user(who.platform, who.user_id, who.user_name)
        notes = [f"({crops.note.capitalize()}.)"] if crops.note else []
        if animated:
            notes.append("(Your image is animated; I used its first frame.)")
        replies: list[Reply] = []
        upload_id = None
        async with self.store.leases.held(NEAR_DUPLICATES, NEAR_DUPLICATES_TTL_S):  # one submission at a time
            index = await asyncio.to_thread(FaceHashIndex.of_faces, self.store.data_dir, await self.store.faces())
            for n, crop in enumerate(crops.crops, 1):
                which = f"Face {n}" if len(crops.crops) > 1 else "That face"
                h = face_hash(crop.image)
                if same := index.find(h):
                    notes.append(f"{which} is already in the training set (item #{same[0].image_id}, or one very "
                                 "like it), so I left it out.")
                    continue
                guess = await self._guess_tags(crop.image, command)
                if upload_id is None:
                    upload_id = await self.store.add_upload(data, suffix_of(picture.format or "?"),
                                                            NewUpload(user, who.platform, who.chat_id, upload.filename))
                shown = await asyncio.to_thread(lambda: png_bytes(upscale(crop.image, self.display_size)))
                hair, eye = guess.hair.index, guess.eye.index
                meta = NewPicture("submission", who.platform, who.chat_id, user, tags_text(hair, eye), "",
                                  hair=hair, eye=eye, upload_id=upload_id)
                added = await self.store.add_submission(crop.image, shown, meta, who.user_key, upload.filename)
                if added is None:
                    notes.append(f"{which} is already in the training set, so I left it out.")
                    continue
                index.add(added[0], h)
                replies.append(Reply(submission_text(added[0], guess), [Attachment(f"submission-{added[0]}.png", shown)],
                                     Buttons(added[1], 0, 0)))
                replies.append(tag_card(await self.store.item(added[0])))
        if not replies:
            await self.limits.give_back(who.user_key, who.chat_key)
            return Reply("\n".join(notes), refusal=True)
        first = replies[0]
        return dataclasses.replace(first, text="\n".join([first.text, *notes]), more=tuple(replies[1:]))

    async def _guess_tags(self, face: Image.Image, command: Submit) -> TagGuess:
        if self._tagger is None:
            self._tagger = await asyncio.to_thread(load_tagger)
        return await asyncio.to_thread(complete_tags, self._tagger, face, command.hair, command.eye)

    async def _run(self, who: Who, job: Job, on_queued: OnQueued | None) -> Reply:
        """Draw a job whose limits were taken, store the picture and answer with it and its vote buttons."""
        try:
            drawn, version = await self._submit(job, _quietly(on_queued))
        except QueueFull as e:
            await self.limits.give_back(who.user_key, who.chat_key)
            return Reply(f"I'm busy drawing for others — try again in {e.retry_after} s.", refusal=True)
        except (GenerationFailed, asyncio.TimeoutError) as e:
            log.warning("drawing for %s failed: %s", who.user_key, str(e) or "timed out")
            await self.limits.give_back(who.user_key, who.chat_key)
            return Reply("The generator hiccuped on that picture — please try again.", refusal=True)
        data = await self.generator.encode(job.encode, drawn, job.faces)
        picture_id = await self.store.add_picture(data, job.suffix, job.picture(model_version=version))
        return Reply(job.caption(version), [Attachment(f"moebot-{picture_id}{job.suffix}", data)],
                     Buttons(picture_id, 0, 0))

    async def _submit(self, job: Job, on_queued: OnQueued | None) -> tuple[Any, str]:
        """Hand the job to the service; ``on_queued(position)`` is awaited when others are ahead of it."""
        ahead = self.waiting() if self.will_wait(job.faces) else 0
        drawing = asyncio.ensure_future(job.draw())
        try:
            await asyncio.sleep(0)  # one turn of the loop: the service queues the request or refuses it at once
            if ahead and on_queued is not None and not drawing.done():
                await on_queued(ahead)
            return await drawing
        finally:
            drawing.cancel()  # a no-op once done; drops the request if we were cancelled meanwhile

    def _job(self, command: Waifu | Grid | Morph, base: dict) -> Job:
        """Choose the random parts now, on the loop, so a picture can be drawn again from its caption."""
        g = self.generator
        hair = command.hair if command.hair is not None else self._rng.randrange(N_HAIR)
        eye = command.eye if command.eye is not None else self._rng.randrange(N_EYE)
        seed = command.seed if command.seed is not None else self._rng.randrange(MAX_SEED + 1)
        pair = f"{HAIR_COLORS[hair]} hair, {EYE_COLORS[eye]} eyes"
        meta = dict(hair=hair, eye=eye, seed=seed)
        if isinstance(command, Waifu):
            n = command.count
            seeds = list(range(seed, seed + n))
            shown = f"seed {seed}" if n == 1 else f"seeds {seed}–{seed + n - 1}"
            again = f"/waifu {HAIR_COLORS[hair]} {EYE_COLORS[eye]}" + (f" {n}" if n > 1 else "") + f" seed:{seed}"
            size = self.display_size

            async def faces() -> tuple[Any, str]:
                drawn = await g.faces([hair] * n, [eye] * n, seeds, size=size)  # upscaled for 128 px and more
                return drawn.images, drawn.version

            def encode(images: Any) -> bytes:
                return png_bytes(to_pil(images[0], size) if n == 1 else grid(images, 2, cell=size))
            picture = partial(NewPicture, "face" if n == 1 else "grid", **base, tags=pair, count=n, **meta)
            return Job(faces, encode, ".png", picture, f"{pair} · {shown}", again, n)
        if isinstance(command, Grid):
            mode, n_faces = {"hair": ("change-hair", N_HAIR), "eye": ("change-eye", N_EYE),
                             "all": ("fix-noise", N_HAIR * N_EYE)}[command.mode]
            cell = 64 if command.mode == "all" else min(self.display_size, 128)
            what = {"hair": f"every hair colour, {EYE_COLORS[eye]} eyes",
                    "eye": f"{HAIR_COLORS[hair]} hair, every eye colour",
                    "all": "every hair colour (rows) × every eye colour (columns)"}[command.mode]
            again = f"/grid {command.mode} {HAIR_COLORS[hair]} {EYE_COLORS[eye]} seed:{seed}"
            picture = partial(NewPicture, "grid", **base, tags=what, count=n_faces, **meta)
            return Job(lambda: g.mode_grid(mode, hair, eye, seed, n=1, size=cell), png_bytes, ".png", picture,
                       f"{what} · seed {seed}", again, n_faces)
        hair2 = command.hair2 if command.hair2 is not None else self._rng.randrange(N_HAIR)
        eye2 = command.eye2 if command.eye2 is not None else self._rng.randrange(N_EYE)
        seed2 = command.seed2 if command.seed2 is not None else self._rng.randrange(MAX_SEED + 1)
        pair2 = f"{HAIR_COLORS[hair2]} hair, {EYE_COLORS[eye2]} eyes"
        again = f"/morph {HAIR_COLORS[hair]} {EYE_COLORS[eye]} {HAIR_COLORS[hair2]} {EYE_COLORS[eye2]} " \
                f"seed:{seed} seed2:{seed2}"
        frames, size = self.morph_frames, min(self.display_size, 256)
        picture = partial(NewPicture, "morph", **base, tags=f"{pair} → {pair2}", count=frames, **meta)
        return Job(lambda: g.morph_frames((hair, eye, seed), (hair2, eye2, seed2), frames),  # enlarged as encoded
                   lambda drawn: gif_bytes([upscale(f, size) for f in drawn]), ".gif", picture,
                   f"{pair} (seed {seed}) → {pair2} (seed {seed2})", again, frames)

    def _sketch_job(self, command: Sketch, sketch: SketchInput, base: dict) -> Job:
        """The drawing as read and the face painted from it, side by side; colours not given come from the seed."""
        g = self.generator
        seed = command.seed if command.seed is not None else self._rng.randrange(MAX_SEED + 1)
        hair, eye = sketch_tags(seed, command.hair, command.eye)
        pair = f"{HAIR_COLORS[hair]} hair, {EYE_COLORS[eye]} eyes"
        size = self.display_size
        pixels = torch.from_numpy(sketch.pixels)[None, None]

        async def face() -> tuple[Any, str]:
            drawn = await g.sketch(pixels, [hair], [eye], [seed])
            return drawn.images, drawn.version

        def encode(images: Any) -> bytes:
            return png_bytes(side_by_side(sketch.to_image(), images[0], size))
        picture = partial(NewPicture, "sketch", **base, tags=pair, hair=hair, eye=eye, seed=seed)
        again = f"/sketch {HAIR_COLORS[hair]} {EYE_COLORS[eye]} seed:{seed} with the same drawing"
        return Job(face, encode, ".png", picture, f"your sketch → {pair} · seed {seed}", again, 1,
                   tuple(sketch.notes()))

    async def _top(self, command: Top) -> Reply:
        since = None if command.period == "all" else \
            datetime.now(timezone.utc) - timedelta(days=1 if command.period == "day" else 7)
        best = await self.store.top(since, self.top_size)
        span = {"day": "today", "week": "this week", "all": "of all time"}[command.period]
        if not best:
            return Reply(f"No votes {span} yet — press 👍 under a picture you like.")
        lines = [f"Best-voted pictures {span}:"]
        files = []
        for rank, p in enumerate(best, 1):
            lines.append(f"{rank}. {p.tags} · seed {p.seed} · 👍 {p.up} 👎 {p.down}")
            try:
                data = await asyncio.to_thread(p.path.read_bytes)
                files.append(Attachment(f"top{rank}-{p.id}{p.path.suffix}", data))
            except OSError:
                log.warning("picture file %s is missing", p.path)
        return Reply("\n".join(lines), files)

    async def _stats(self, who: Who) -> Reply:
        t = await self.store.totals()
        text = (f"Pictures made: {t.pictures}\nVotes: {t.votes} from {t.voters} people\n"
                f"Dataset: {t.dataset} faces\nModel: {self.model_version}\n"
                f"Queue: {self.waiting()} drawing or waiting")
        if who.user_key in self.admins:
            text += f"\nGenerator: {self.generator.metrics.text()}"
            if self.storage_full_at is not None:
                text += f"\n⚠ The disk was full at {self.storage_full_at:%Y-%m-%d %H:%M} UTC: writes failed " \
                        f"(make room where {self.store.data_dir} is)"
        return Reply(text)


def help_text() -> str:
    lines = ["I draw anime faces. Commands:"]
    lines += [f"{usage} — {text}" for usage, text in COMMANDS.values()]
    lines.append("Colours can come in any order, with or without 'hair'/'eyes', in English, français, 한국어, "
                 "日本語 or 中文. Vote with 👍/👎 under each picture.")
    return "\n".join(lines)


def tags_text(hair: int | None, eye: int | None) -> str:
    return f"{HAIR_COLORS[hair]} hair, {EYE_COLORS[eye]} eyes" if hair is not None and eye is not None else "untagged"


def submission_text(item_id: int, guess: TagGuess) -> str:
    """The answer to one submitted face: its tags, what the classifier read and how sure it was."""
    lines = [f"Submission #{item_id}: {tags_text(guess.hair.index, guess.eye.index)}."]
    if guess.text():
        readings = [f"{what}: {readings_text(g, names)}" for g, names, what in
                    ((guess.hair, HAIR_COLORS, "hair"), (guess.eye, EYE_COLORS, "eyes")) if g.predicted]
        lines.append(f"{guess.text()} — my readings: {'; '.join(readings)}.")
    lines.append("It joins the training data when the votes say so (👍/👎) or an admin approves it; wrong colours "
                 "can be fixed with the buttons of the next message.")
    return "\n".join(lines)


def readings_text(guess: ColourGuess, names: tuple[str, ...] | list[str]) -> str:
    return ", ".join(f"{names[i]} {p:.2f}" for i, p in guess.top)


def describe(item: Item) -> str:
    """One line an admin reviews an item by."""
    return (f"Item #{item.id} · {tags_text(item.hair, item.eye)} · {item.status} · 👍 {item.up} 👎 {item.down} · "
            f"from {item.source}")


def tag_card(item: Item) -> Reply:
    """The item's tags with a button per colour (the current ones ticked): one press changes hair or eyes.
    Rows of 4 hair and 5 eye colours: five rows, Discord's most."""
    def row(part: str, names: tuple[str, ...] | list[str], current: int | None, start: int, n: int) -> tuple:
        noun = "hair" if part == "h" else "eyes"
        return tuple((f"{'✓ ' if i == current else ''}{names[i]} {noun}", f"tag:{item.id}:{part}:{i}")
                     for i in range(start, min(start + n, len(names))))
    rows = tuple(row("h", HAIR_COLORS, item.hair, i, 4) for i in range(0, N_HAIR, 4))
    rows += tuple(row("e", EYE_COLORS, item.eye, i, 5) for i in range(0, N_EYE, 5))
    return Reply(f"Tags of item #{item.id}: {tags_text(item.hair, item.eye)}. Wrong? Press the right hair "
                 "colour, then the right eye colour.", actions=rows)


def figures(metrics: dict[str, Any]) -> str:
    """The gate's figures of a model, short."""
    names = {"hair_ratio": "hair", "eye_ratio": "eyes", "diversity_ratio": "diversity", "fd": "FD"}
    return ", ".join(f"{short} {metrics[key]:.3g}" for key, short in names.items()
                     if isinstance(metrics.get(key), (int, float)))


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
