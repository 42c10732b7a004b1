"""Telegram (python-telegram-bot 22): commands and vote buttons translated to Core calls and back.

Long polling, concurrent updates, Telegram's flood limits with short answers first
(``PriorityRateLimiter``) and their own connections (``SplitRequest``); the only state a
button needs is its ``callback_data`` (``vote:<picture id>:up``) and the database,
so buttons keep working after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from functools import partial
from typing import TYPE_CHECKING, AsyncIterator

from telegram import (Bot, BotCommand, Document, InlineKeyboardButton, InlineKeyboardMarkup, InputMediaPhoto, Message,
                      PhotoSize, Update)
from telegram.constants import CallbackQueryLimit, ChatAction, MessageLimit
from telegram.error import TelegramError
from telegram.ext import (Application, CallbackQueryHandler, CommandHandler, ContextTypes,
                          MessageHandler, filters)

from bot.command_words import CommandError
from bot.config import TelegramConfig
from bot.core import ACTION_ID, VOTE_ID, Buttons, Core, Reply, Rows, Upload, Who
from generator.sketch_input import SketchRejected
from bot.telegram_http import SplitRequest
from bot.telegram_rate_limiter import NOTICE, PriorityRateLimiter, ranked

if TYPE_CHECKING:
    from bot.retraining import RunOutcome

log = logging.getLogger(__name__)

CAPTION_LIMIT = MessageLimit.CAPTION_LENGTH  # 1,024 characters
TOAST_LIMIT = CallbackQueryLimit.ANSWER_CALLBACK_QUERY_TEXT_LENGTH  # 200
SORRY = "Sorry, that failed on my side. Please try again."
MENU = "commands"  # bot_data key of the menu that start publishes


def build_application(core: Core, cfg: TelegramConfig, token: str) -> Application:
    """An Application with one handler per command of the core's registry and one for vote buttons."""
    app = (Application.builder().token(token).base_url(cfg.base_url).base_file_url(cfg.base_file_url)
           .request(SplitRequest()).rate_limiter(PriorityRateLimiter()).concurrent_updates(True).build())
    adapter = TelegramAdapter(core, cfg)
    app.add_handler(CommandHandler([n for spec in core.commands for n in (spec.name, *spec.aliases)],
                                   adapter.on_command))
    # /sketch as the caption of a photo or file (CommandHandler reads only a message's text)
    with_picture = filters.PHOTO | filters.Document.ALL
    app.add_handler(MessageHandler(filters.CaptionRegex(adapter.upload_caption) & with_picture, adapter.on_command))
    # in a private chat an unknown /command gets "I don't know…"; in groups it may be another bot's
    app.add_handler(MessageHandler(filters.COMMAND & filters.ChatType.PRIVATE, adapter.on_command))
    app.add_handler(CallbackQueryHandler(adapter.on_vote, pattern=VOTE_ID))
    app.add_handler(CallbackQueryHandler(adapter.on_press, pattern=ACTION_ID))
    app.add_error_handler(adapter.on_error)
    if core.retrainer is not None:
        core.retrainer.subscribe(partial(adapter.tell_admins, app.bot))
    app.bot_data[MENU] = menu(core)
    return app


def menu(core: Core) -> list[BotCommand]:
    """The command menu: every command of the registry with its help line."""
    return [BotCommand(spec.name, spec.description[:256]) for spec in core.commands]


async def start(app: Application, cfg: TelegramConfig) -> None:
    """Initialize, publish the command menu, and start long polling (returns once running)."""
    await app.initialize()
    await app.bot.set_my_commands(app.bot_data[MENU])
    await app.start()
    await app.updater.start_polling(timeout=cfg.poll_timeout_s)


async def stop(app: Application) -> None:
    await app.updater.stop()
    await app.stop()
    await app.shutdown()


def caption_of(text: str) -> str | None:
    """``text`` as a picture's caption; None when it is too long for one and must be sent as text."""
    return text if len(text) <= CAPTION_LIMIT else None


def split_text(text: str, limit: int = MessageLimit.MAX_TEXT_LENGTH) -> list[str]:
    """``text`` in as few messages of at most ``limit`` characters as it takes, cut between lines (a longer line
    is cut where the limit falls)."""
    parts: list[str] = []
    current: str | None = None
    for line in text.split("\n"):
        for piece in [line[i:i + limit] for i in range(0, len(line), limit)] or [""]:
            if current is not None and len(current) + 1 + len(piece) <= limit:
                current += "\n" + piece
            else:
                if current is not None:
                    parts.append(current)
                current = piece
    return [*parts, current or ""]


def keyboard(buttons: Buttons) -> InlineKeyboardMarkup:
    return rows_markup(((*buttons.labelled(),),))


def rows_markup(rows: Rows) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=data) for label, data in row]
                                 for row in rows])


def reply_markup(reply: Reply) -> InlineKeyboardMarkup | None:
    """The vote buttons, then any other rows (review, tags); None when the reply has no buttons."""
    rows = ((*reply.buttons.labelled(),),) if reply.buttons else ()
    return rows_markup(rows + reply.actions) if rows + reply.actions else None


class TelegramAdapter:
    def __init__(self, core: Core, cfg: TelegramConfig):
        self.core = core
        self.cfg = cfg
        # a picture sent with a command that takes one (/sketch, /submit) as its caption
        uploads = "|".join(re.escape(spec.name) for spec in core.commands if spec.upload) or "(?!)"
        self.upload_caption = re.compile(rf"^/(?:{uploads})(@\w+)?(\s|$)", re.IGNORECASE)

    async def on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, user, chat = update.effective_message, update.effective_user, update.effective_chat
        text = message and (message.text or message.caption)
        if message is None or user is None or chat is None or not text:
            return
        addressed = (m := self.upload_caption.match(text)) and m.group(1)
        if addressed and addressed[1:].lower() != context.bot.username.lower():
            return  # a caption addressed to another bot
        who = Who("telegram", str(user.id), user.full_name, str(chat.id))
        try:
            command = self.core.commands.parse(text, self.core.bounds)
        except CommandError as e:
            await message.reply_text(str(e))
            return
        spec = self.core.commands.of(command)
        if not spec.slow:
            await self._send(message, await self.core.handle(who, command))
            return

        upload = _upload(message) if spec.upload else None
        async with _uploading(message):
            reply = await self.core.handle(who, command, partial(queue_notice, message), upload)
        await self._send(message, reply)

    async def on_vote(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Record the vote, then answer the query once with the core's notice (the toast only the voter sees:
        a query can be answered only once, so an early empty answer would throw the notice away)."""
        query = update.callback_query
        user = query.from_user
        chat_id = str(query.message.chat.id) if query.message else ""
        result = await self.core.vote(Who("telegram", str(user.id), user.full_name, chat_id), query.data or "")
        await query.answer(result.notice[:TOAST_LIMIT])
        await query.edit_message_reply_markup(keyboard(result.buttons) if result.buttons else None)

    async def on_press(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A review or tag button. The answer to the query carries the notice: a refusal (not an admin, say)
        has no other way to reach only the presser; the core's work here is one quick database write."""
        query = update.callback_query
        user = query.from_user
        message = query.message if isinstance(query.message, Message) else None
        who = Who("telegram", str(user.id), user.full_name, str(message.chat.id) if message else "")
        result = await self.core.press(who, query.data or "")
        await query.answer(result.notice[:TOAST_LIMIT])
        if result.reply is not None and message is not None:
            await self._send(message, result.reply)
        if message is None or (result.text is None and result.rows is None):
            return
        new_markup = message.reply_markup if result.rows is None else rows_markup(result.rows) if result.rows else None
        if result.text is None:
            await query.edit_message_reply_markup(new_markup)
        elif message.photo or message.document or message.animation:
            await query.edit_message_caption(result.text[:CAPTION_LIMIT], reply_markup=new_markup)
        else:
            await query.edit_message_text(result.text, reply_markup=new_markup)

    async def tell_admins(self, bot: Bot, outcome: RunOutcome) -> None:
        """A retraining run ended: each Telegram admin gets its summary and before/after grid in a private chat
        (an admin who never started a chat with the bot cannot be written to; that is logged)."""
        reply = await self.core.run_report(outcome)
        for admin in self.core.admin_ids("telegram"):
            try:
                caption = caption_of(reply.text)
                if caption is None or not reply.files:  # as _send_one: a text too long for a caption first
                    for part in split_text(reply.text):
                        await bot.send_message(int(admin), part)
                if reply.files:
                    await bot.send_photo(int(admin), reply.files[0].data, caption=caption,
                                         filename=reply.files[0].filename)
            except (TelegramError, ValueError):
                log.warning("could not tell admin telegram:%s about run %s", admin, outcome.version, exc_info=True)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log, and tell the user something failed (a button's presser in a toast); never a traceback in chat."""
        log.error("telegram update failed", exc_info=context.error)
        if not isinstance(update, Update):
            return
        with contextlib.suppress(TelegramError):  # also a query answered before the failure: it stays answered
            if update.callback_query:
                await update.callback_query.answer(SORRY)
            elif update.effective_message:
                await update.effective_message.reply_text(SORRY)

    async def _send(self, message: Message, reply: Reply) -> None:
        """Answer ``message`` with the reply, then with each of its further messages."""
        await self._send_one(message, reply)
        for extra in reply.more:
            await self._send_one(message, extra)

    async def _send_one(self, message: Message, reply: Reply) -> None:
        """The reply's pictures with its text as their caption; a text too long for a caption (/models with many
        versions) comes first on its own, in as many messages as it takes."""
        markup = reply_markup(reply)
        caption = caption_of(reply.text)
        stills = [f for f in reply.files if not f.filename.endswith(".gif")]
        if not reply.files or caption is None or (len(reply.files) > 1 and not stills):  # /top of GIFs: no album
            *parts, last = split_text(reply.text)
            for part in parts:
                await message.reply_text(part)
            await message.reply_text(last, reply_markup=None if reply.files else markup)
            caption = None
        if not reply.files:
            return
        if len(reply.files) > 1:  # /top: an album of the stills (albums cannot hold GIFs), then each GIF
            if len(stills) > 1:
                await message.reply_media_group([InputMediaPhoto(f.data, caption=caption if i == 0 else None)
                                                 for i, f in enumerate(stills)])
            elif stills:
                await message.reply_photo(stills[0].data, caption=caption, filename=stills[0].filename)
            for f in reply.files:
                if f.filename.endswith(".gif"):
                    await message.reply_animation(f.data, filename=f.filename)
        elif reply.files[0].filename.endswith(".gif"):
            await message.reply_animation(reply.files[0].data, caption=caption, reply_markup=markup,
                                          filename=reply.files[0].filename)
        elif self.cfg.send_as_document:
            await message.reply_document(reply.files[0].data, caption=caption, reply_markup=markup,
                                         filename=reply.files[0].filename)
        else:
            await message.reply_photo(reply.files[0].data, caption=caption, reply_markup=markup,
                                      filename=reply.files[0].filename)


async def queue_notice(message: Message, position: int) -> None:
    """Tell who sent ``message`` that others are ahead of their picture; in a burst there are many such notices,
    so they wait behind answers to other commands (see ``bot.telegram_rate_limiter``)."""
    with ranked(NOTICE):
        await message.reply_text(f"⏳ You're number {position} in the queue — your picture is coming.")


def _upload(message: Message) -> Upload | None:
    """The picture /sketch means: the message's own photo or file, else that of the message it replies to."""
    for m in (message, message.reply_to_message):
        if m is not None and m.animation:  # also has a document: the MP4 that Telegram made of a GIF
            return Upload(m.animation.file_name or "animation.mp4", m.animation.file_size, _video_refusal)
        if m is not None and m.photo:
            return Upload("photo.jpg", m.photo[-1].file_size, partial(_download, m.photo[-1]))  # the largest size
        if m is not None and m.document:
            return Upload(m.document.file_name or "file", m.document.file_size, partial(_download, m.document))
    return None


async def _download(media: PhotoSize | Document) -> bytes:
    """The file's bytes through getFile; a failure is a refusal the user reads, not an error."""
    try:
        return bytes(await (await media.get_file()).download_as_bytearray())
    except TelegramError as e:
        raise SketchRejected(f"I couldn't download your picture from Telegram ({e.message}) — please send it "
                             "again.") from None


async def _video_refusal() -> bytes:
    raise SketchRejected("Telegram sends GIFs as videos, which I can't read: send a still picture (PNG or JPEG), "
                         "or a screenshot of the frame you want.")


@contextlib.asynccontextmanager
async def _uploading(message: Message) -> AsyncIterator[None]:
    """Show "sending a photo…" while drawing; Telegram clears the status after 5 s, so repeat it."""
    async def repeat() -> None:
        while True:
            with contextlib.suppress(TelegramError):
                await message.chat.send_action(ChatAction.UPLOAD_PHOTO)
            await asyncio.sleep(4.5)
    task = asyncio.create_task(repeat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
