"""What the bot does, whatever the chat platform: one call per command or button press, one reply back.

Adapters translate a platform event into ``Core.handle`` / ``Core.vote`` / ``Core.press`` and the returned
``Reply`` / ``VoteResult`` / ``Pressed`` into platform messages. The commands themselves are entries of a
``bot.registry.Registry`` (``bot.commands`` holds the bot's own), each with its handler in ``bot.handlers``;
the core holds what they share (store, generator, limits, settings) and dispatches to them.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Collection

from bot.curation import CurationRules
from bot.limits import Limits
from bot.registry import Bounds, Registry
from bot.store import Store, storage_full
from generator.sketch_input import UploadLimits

if TYPE_CHECKING:
    from bot.retraining import Retrainer, RunOutcome
    from generator.service import DrawingService

log = logging.getLogger(__name__)

VOTE_ID = re.compile(r"^vote:(\d{1,18}):(up|down)$")  # also the Telegram callback_data: ≤ 64 bytes
# The buttons of /review (rev:<item>:ok|no|tag) and of a tag card (tag:<item>:h|e:<colour index>)
ACTION_ID = re.compile(r"^(?:rev:(\d{1,18}):(ok|no|tag)|tag:(\d{1,18}):([he]):(\d{1,2}))$")
ADMINS_ONLY = "Sorry, only the bot's admins can use {}."
SORRY = "Sorry, something went wrong on my side. Please try again in a moment."
STORAGE_FULL = "I can't save anything right now: the bot's disk is full, and an admin has to make room. " \
               "Please try again later."
DISK_FULL_NOTICE = "⚠ The bot's disk is full ({}): at {:%Y-%m-%d %H:%M} UTC a write failed; votes, pictures and " \
                   "uploads fail until there is room. (I say this at most once an hour; /stats shows the last time " \
                   "it happened.)"
DECODERS = 2  # threads that decode uploads: a flood of hostile files waits for these, never for the shared pool


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


@dataclass(frozen=True)
class Call:
    """One command as its handler gets it: who sent it, its value, and what travels beside it."""
    who: Who
    command: Any  # the value its registry entry makes, e.g. bot.handlers.drawing.Waifu
    on_queued: OnQueued | None = None  # awaited with a queue position when others are ahead of a drawing
    upload: Upload | None = None  # the picture sent with a command that takes one


class Core:
    def __init__(self, store: Store, generator: DrawingService, limits: Limits, *, commands: Registry,
                 max_count: int = 4, display_size: int = 256, morph_frames: int = 16, top_size: int = 4,
                 admins: Collection[str] = (), uploads: UploadLimits = UploadLimits(),
                 curation: CurationRules = CurationRules(), retrainer: Retrainer | None = None,
                 rng: random.Random | None = None):
        self.store = store
        self.generator = generator
        self.limits = limits
        self.commands = commands
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
        self.rng = rng or random.SystemRandom()  # the random colours and seeds of drawings
        self.tagger: Any = None  # the evaluation classifier, loaded by the first /submit
        self.decoders = ThreadPoolExecutor(DECODERS, thread_name_prefix="moebot-decode")
        self._notices: set[asyncio.Task] = set()  # admin notices on their way

    async def close(self) -> None:
        """Close the database; the generator service belongs to whoever started it."""
        self.decoders.shutdown(wait=False, cancel_futures=True)
        await self.store.close()

    @property
    def bounds(self) -> Bounds:
        """The config values that command arguments' ranges name."""
        return {"max_count": self.max_count}

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

    async def handle(self, who: Who, command: Any, on_queued: OnQueued | None = None,
                     upload: Upload | None = None) -> Reply:
        """Run one command through its registry entry (with the picture sent along); every outcome, failures
        included, is a Reply a user can read."""
        try:
            spec = self.commands.of(command)
            if spec.admin and not self.is_admin(who):
                return Reply(ADMINS_ONLY.format(f"/{spec.name}"), refusal=True)
            return await spec.handler(self, Call(who, command, on_queued, upload))
        except Exception as e:
            if storage_full(e):
                return Reply(self._storage_full(e), refusal=True)
            log.exception("command %r from %s failed", command, who.user_key)
            return Reply(SORRY, refusal=True)

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

    async def press(self, who: Who, custom_id: str) -> Pressed:
        """A review or tag button, as the registry's ``press`` handles it; every refusal is a notice the presser
        reads."""
        if not ACTION_ID.match(custom_id) or self.commands.press is None:
            return Pressed("That button is not one of mine.")
        try:
            return await self.commands.press(self, Call(who, custom_id))
        except Exception:
            log.exception("button %r from %s failed", custom_id, who.user_key)
            return Pressed(SORRY)

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

    async def run_report(self, outcome: RunOutcome) -> Reply:
        """What admins are sent when a retraining run ends: its summary and the before/after grid."""
        files = []
        if outcome.grid is not None:
            try:
                files.append(Attachment(f"{outcome.version}.png", await asyncio.to_thread(outcome.grid.read_bytes)))
            except OSError:
                log.warning("grid %s of run %s is missing", outcome.grid, outcome.version)
        return Reply(outcome.text, files)
