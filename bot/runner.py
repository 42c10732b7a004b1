"""``moebot run``: open the store, start the generator service, and start every chat platform that has a token.

With no token at all it explains how to add one and serves the local playground
(``bot.web``), so a fresh install can try every command in a browser; ``--web``
serves it beside the chat platforms too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from datetime import timezone
from pathlib import Path
from typing import Awaitable, Callable, Mapping
from urllib.parse import urlsplit

from apscheduler.schedulers.asyncio import AsyncIOScheduler

import migrations
from bot.commands import COMMANDS
from bot.config import Config
from bot.configured_store import storage_refusal, with_store
from bot.core import Core
from bot.jobs import OneProcessScheduler
from bot.limits import Limits
from bot.platforms import ChatPlatforms
from bot.redact import redacted_logs
from bot.retraining import Retrainer
from bot.store import Store
from bot.store.database import Database, DatabaseUnavailable
from bot.web import server
from bot.web.adapter import LOCAL
from generator.active_model import follow_promotions, read_active
from generator.metrics import serve_prometheus
from generator.model_kinds import KINDS
from generator.sampler import DeviceUnavailable, resolve_device, sketch_weights
from generator.service import DrawingService, GeneratorService, ServiceOptions
from generator.worker_process import WorkerFailed

log = logging.getLogger("moebot")

NO_TOKEN = """No chat token is set, so no Discord or Telegram bot is started; the playground below answers the
same commands in your browser. To add a chat platform, set one or both:
  export TELEGRAM_TOKEN=123456:ABC...   (from @BotFather in Telegram: /newbot)
  export DISCORD_TOKEN=MTE...           (Discord developer portal: your application > Bot > Reset Token)
then run `moebot run` again (`moebot run --web` keeps the playground too). The README's "The chat bot"
section has the details."""


def run(cfg: Config, environ: Mapping[str, str] = os.environ, *, web: bool = False) -> int:
    """Serve until stopped: the chat platforms that have a token, and the playground when asked or when none has.

    The status is 0 when stopped (Ctrl+C, SIGTERM), 2 for a setting to fix (a rejected token among them), 1 when
    a chat platform stopped on an error."""
    tokens = {name: environ.get(f"{name.upper()}_TOKEN", "").strip() for name in ("telegram", "discord")}
    web = web or not any(tokens.values())
    admin_token = environ.get(server.TOKEN_ENV, "").strip()
    if web and (refusal := server.bind_refusal(cfg.web.host, admin_token)):
        print(f"moebot run: {refusal}", file=sys.stderr)
        return 2
    if refusal := device_refusal(cfg):
        print(f"moebot run: {refusal}", file=sys.stderr)
        return 2
    if not any(tokens.values()):
        print(NO_TOKEN, flush=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines show every Telegram URL
    try:
        with redacted_logs([*tokens.values(), admin_token, urlsplit(cfg.storage.url).password or ""]):
            return asyncio.run(serve(cfg, tokens, web=web, admin_token=admin_token))
    except (DatabaseUnavailable, migrations.SchemaTooNew) as e:
        print(f"moebot run: {storage_refusal(cfg, e)}", file=sys.stderr)
        return 2
    except server.CannotServe as e:
        print(f"moebot run: {e}", file=sys.stderr)
        return 2
    except WorkerFailed as e:
        return cannot_load(e)


def device_refusal(cfg: Config) -> str | None:
    """Why [generator] device cannot serve on this machine, naming the setting (a worker that failed on it would
    seem to refuse the weights); None when it can. Ray replicas pick their device on their own machines."""
    if cfg.generator.backend != "local":
        return None
    try:
        resolve_device(cfg.generator.device)
    except DeviceUnavailable as e:
        return f"[generator] device in bot.toml (or MOEBOT_GENERATOR_DEVICE): {e}"
    return None


def cannot_load(e: Exception) -> int:
    print(f"moebot run: cannot load the generator: {e}\n"
          "Set [generator] weights in bot.toml (or MOEBOT_GENERATOR_WEIGHTS) to a weights file, "
          "e.g. one written by `moebot train acgan`.", file=sys.stderr)
    return 2


def configured_weights(cfg: Config) -> dict[str, str | None]:
    """The weights [generator] names for each kind (None: the kind's bundled weights)."""
    return {"face": cfg.generator.weights or None,
            "sketch": sketch_weights(cfg.generator.sketch_weights, cfg.generator.sketch_mode)}


def active_weights(cfg: Config) -> dict[str, str | None]:
    """Each kind's weights: those the model lifecycle made active, else the configured ones, else None (bundled)."""
    configured = configured_weights(cfg)
    promoted = {kind: read_active(cfg.storage.data_dir, kind) for kind in KINDS}
    return {kind: str(a.weights) if a else configured.get(kind) for kind, a in promoted.items()}


def make_service(cfg: Config) -> DrawingService:
    """The generator service that [generator] describes, not started yet."""
    g = cfg.generator
    options = ServiceOptions(max_batch=g.max_batch, max_wait_ms=g.max_wait_ms, queue_limit=g.queue_limit,
                             device=g.device, threads=g.threads, compile=g.compile, upscale=g.upscaler)
    if g.backend == "ray":
        from generator.ray_service import RayGeneratorService  # the ray extra is only needed here
        return RayGeneratorService(active_weights(cfg), options, address=g.ray_address or None)
    return GeneratorService(active_weights(cfg), options)


def make_retrainer(cfg: Config, db: Database) -> Retrainer:
    """The retrainer that [training] describes, on the store's database ``db``; it fine-tunes whatever serves now
    (see active_weights), and its lifecycle promotes and rolls back models of every kind."""
    return Retrainer(cfg.training, cfg.storage.data_dir, db,
                     {kind: Path(w) if w else None for kind, w in configured_weights(cfg).items()},
                     ray_address=cfg.generator.ray_address or None)


def with_retrainer(cfg: Config, work: Callable[[Retrainer], Awaitable[int]]) -> int:
    """``await work(retrainer)`` on the configured store (see with_store)."""
    return with_store(cfg, lambda store: work(make_retrainer(cfg, store.db)))


async def _own_scheduler(running: contextlib.AsyncExitStack) -> AsyncIOScheduler:
    """The process's APScheduler (for the retraining check), shut down when the run ends."""
    scheduler = AsyncIOScheduler(timezone=timezone.utc)
    scheduler.start()
    running.callback(scheduler.shutdown, wait=False)
    return scheduler


def make_core(cfg: Config, generator: DrawingService, store: Store, retrainer: Retrainer | None = None, *,
              web: bool = False) -> Core:
    """The core for [limits] and friends; with the playground served, its local user is an admin too: whoever
    reaches it is the operator (on loopback, or holding MOEBOT_WEB_TOKEN), as on the dashboard."""
    admins = (*cfg.limits.admins, LOCAL.user_key) if web else cfg.limits.admins
    return Core(store, generator, Limits(store.db, cfg.limits.user_cooldown_s, cfg.limits.chat_per_minute),
                commands=COMMANDS, max_count=cfg.limits.max_count, display_size=cfg.generator.display_size,
                morph_frames=cfg.generator.morph_frames, top_size=cfg.limits.top_size, admins=admins,
                uploads=cfg.uploads, curation=cfg.curation, retrainer=retrainer)


async def serve(cfg: Config, tokens: Mapping[str, str], *, web: bool = False, admin_token: str = "") -> int:
    """Run until SIGINT/SIGTERM (or a chat platform stops for good without the playground); stop the retrainer
    while the platforms can still tell admins how its run ended, then the platforms, the core, the generator.
    Returns the exit status (see ``run``)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as running:
        store = await Store.open(cfg.storage_target, cfg.storage.data_dir)
        running.push_async_callback(store.close)  # on every way out: its thread would keep the process alive
        retrainer = make_retrainer(cfg, store.db)
        await retrainer.lifecycle.recover("moebot run")  # damaged active weights give way to earlier ones
        generator = make_service(cfg)
        await running.enter_async_context(generator)
        core = make_core(cfg, generator, store, retrainer, web=web)
        running.push_async_callback(core.close)
        if cfg.generator.metrics_port:
            serve_prometheus(generator.metrics, cfg.generator.metrics_port)
            log.info("generator metrics on http://127.0.0.1:%d/metrics", cfg.generator.metrics_port)
        promotions = asyncio.create_task(follow_promotions(generator, cfg.storage.data_dir))
        running.callback(promotions.cancel)
        chats = ChatPlatforms(stop, playground=web)
        running.push_async_callback(chats.close)
        if tokens["telegram"]:
            chats.start_telegram(core, cfg.telegram, tokens["telegram"])
        if tokens["discord"]:
            chats.start_discord(core, cfg.discord, tokens["discord"])
        jobs = OneProcessScheduler(await _own_scheduler(running), store.leases)  # one process runs each job
        retrainer.schedule(jobs)
        running.push_async_callback(jobs.close)
        running.push_async_callback(retrainer.close)  # runs before chats.close: a run cut short is still reported
        if web:
            site, url = await server.start(server.create_app(core, cfg.web.runs_dir, admin_token), cfg.web)
            running.push_async_callback(site.cleanup)
            print(f"Playground: {url}   Dashboard: {url}dashboard", flush=True)
        log.info("moebot is running with model %s; Ctrl+C stops it", core.model_version)
        await stop.wait()
    return chats.status
