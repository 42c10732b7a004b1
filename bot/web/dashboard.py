"""What the admin dashboard reads and changes: pictures, training runs, model versions, generator metrics.

Each page of the dashboard has one JSON route here and renders it in the browser;
a new page (the curation queues, say) is one more route and one more tab.
Files are only ever found by an id or a name checked against what exists, never
by a path from the request.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from bot.core import Core
from bot.handlers.curation import decide, is_colour, tags_text
from bot.store import VOTE_FILTERS, GalleryFilter, Item
from bot.web.adapter import CORE, json_body
from generator.active_model import models_dir, read_active
from generator.model_kinds import KINDS, kind_for_arch
from generator.tags import EYE_COLORS, HAIR_COLORS
from generator.weights import read_metadata, weights_version
from generator.worker_process import WorkerFailed
from training.lifecycle import Lifecycle
from training.registry import ModelRecord

PER_PAGE = 24
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
RUN_FILE = re.compile(r"^(loss\.png|fakes\d{6}\.png)$")
MODEL_ID = re.compile(r"^([0-9a-f]{12}|bundled(-[a-z]{1,20})?)$")
RUNS = web.AppKey("runs", Path)
QUEUES = ("pending", "curated", "rejected")  # the training items' states an admin sees and changes
DASHBOARD = "web:dashboard"  # who the curation log and the model registry name for changes made here
EXPORTS = ("generator.safetensors", "upscaler.safetensors")  # what a training run exports, face or sketch, upscaler


def one_of(request: web.Request, key: str, allowed: tuple[str, ...] | dict) -> str:
    """A query value from a fixed set ('' when absent)."""
    value = request.query.get(key, "")
    if value and value not in allowed:
        raise web.HTTPBadRequest(text=f"{key} must be one of {', '.join(allowed)}")
    return value


def page_count(total: int) -> int:
    return max(1, -(-total // PER_PAGE))


def page_number(request: web.Request) -> int:
    try:
        return max(1, int(request.query.get("page", "1")))
    except ValueError:
        raise web.HTTPBadRequest(text="page must be a number") from None


async def gallery(request: web.Request) -> web.Response:
    """``?tags=pink&votes=up&state=curated&platform=web&kind=face&page=2`` → one page of pictures, their votes
    and their training state."""
    q, page = request.query, page_number(request)
    where = GalleryFilter(q.get("tags", "")[:100], one_of(request, "votes", VOTE_FILTERS), q.get("platform", "")[:20],
                          q.get("kind", "")[:20], one_of(request, "state", (*QUEUES, "none")))
    store = request.app[CORE].store
    items, total = await store.gallery(where, page, PER_PAGE)
    platforms, kinds = await store.platforms_and_kinds()
    return web.json_response({
        "items": [{**item.__dict__, "url": f"/pictures/{item.id}"} for item in items],
        "page": page, "pages": page_count(total), "total": total,
        "platforms": platforms, "kinds": kinds})


async def picture(request: web.Request) -> web.FileResponse:
    path = await request.app[CORE].store.picture_file(int(request.match_info["id"]))
    if path is None or not path.is_file():
        raise web.HTTPNotFound(text="no such picture")
    return web.FileResponse(path, headers={"Cache-Control": "private, max-age=86400"})


def item_json(item: Item) -> dict[str, Any]:
    return {"id": item.id, "tags": tags_text(item.hair, item.eye), "hair": item.hair, "eye": item.eye,
            "status": item.status, "source": item.source, "picture": item.picture_id, "up": item.up,
            "down": item.down, "url": f"/items/{item.id}"}


async def queue(request: web.Request) -> web.Response:
    """``?status=pending&page=1`` → one page of the chat's training items in that queue, oldest first."""
    status, page = one_of(request, "status", QUEUES) or "pending", page_number(request)
    store = request.app[CORE].store
    items, total = await store.queue(status, page, PER_PAGE)
    sizes = await store.queue_sizes()
    return web.json_response({"items": [item_json(i) for i in items], "status": status, "page": page,
                              "pages": page_count(total), "total": total,
                              "sizes": {q: sizes.get(q, 0) for q in QUEUES},
                              "hair_colors": HAIR_COLORS, "eye_colors": EYE_COLORS})


async def item_face(request: web.Request) -> web.FileResponse:
    item = await request.app[CORE].store.item(int(request.match_info["id"]))
    if item is None or not item.path.is_file():
        raise web.HTTPNotFound(text="no such item")
    return web.FileResponse(item.path, headers={"Cache-Control": "no-cache"})


async def curate(request: web.Request) -> web.Response:
    """``{"action": "approve" | "reject"}`` decides a pending item; ``{"action": "retag", "hair": 7, "eye": 9}``
    re-tags any item. Logged in the curation log as done in the dashboard, like an admin's /review."""
    store, image_id = request.app[CORE].store, int(request.match_info["id"])
    body = await json_body(request)
    action = body.get("action")
    if action in ("approve", "reject"):
        decided = await decide(store, image_id, action == "approve", DASHBOARD, "the dashboard")
        if decided.refusal:
            raise (web.HTTPNotFound if decided.gone else web.HTTPConflict)(text=decided.refusal)
    elif action == "retag":
        hair, eye = body.get("hair"), body.get("eye")
        if not (is_colour("hair", hair) and is_colour("eye", eye)):
            raise web.HTTPBadRequest(text="hair and eye must be colour indices")
        if not await store.retag(image_id, DASHBOARD, hair=hair, eye=eye):
            raise web.HTTPNotFound(text=f"Item #{image_id} no longer exists.")
    else:
        raise web.HTTPBadRequest(text="action must be approve, reject or retag")
    return web.json_response(item_json(await store.item(image_id)))


def run_folders(runs_dir: Path) -> dict[str, Path]:
    """Training run folders by name: those with the options a run starts by writing."""
    if not runs_dir.is_dir():
        return {}
    return {p.name: p for p in runs_dir.iterdir() if RUN_NAME.match(p.name) and (p / "options.json").is_file()}


def last_stats(path: Path) -> dict[str, Any]:
    """The last line of stats.jsonl (the run's latest losses and accuracies), or {} before the first."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - 4096))
            lines = f.read().decode(errors="replace").splitlines()
        return json.loads(lines[-1]) if lines else {}
    except (OSError, ValueError):
        return {}


def run_summary(name: str, folder: Path) -> dict[str, Any]:
    try:
        options = json.loads((folder / "options.json").read_text())
    except (OSError, ValueError):
        options = {}
    grids = sorted(p.name for p in folder.glob("fakes*.png") if RUN_FILE.match(p.name))
    return {"name": name, "options": options, "last": last_stats(folder / "stats.jsonl"), "grids": grids,
            "loss": (folder / "loss.png").is_file(), "generator": (folder / "generator.safetensors").is_file(),
            "modified": folder.stat().st_mtime}


async def runs(request: web.Request) -> web.Response:
    def read() -> list[dict[str, Any]]:
        found = [run_summary(name, folder) for name, folder in run_folders(request.app[RUNS]).items()]
        return sorted(found, key=lambda r: -r["modified"])
    return web.json_response({"runs": await asyncio.to_thread(read)})


async def run_file(request: web.Request) -> web.FileResponse:
    """A loss curve or a sample grid of a run, by run name and file name, both checked against the listing."""
    folder = run_folders(request.app[RUNS]).get(request.match_info["run"])
    name = request.match_info["file"]
    if folder is None or not RUN_FILE.match(name) or not (folder / name).is_file():
        raise web.HTTPNotFound(text="no such run file")
    return web.FileResponse(folder / name, headers={"Cache-Control": "no-cache"})


def model_entry(model_id: str, source: str, path: Path, active: dict[str, Path | None]) -> dict[str, Any] | None:
    """A weights file as the models tab lists it, ``active`` when it is what its kind serves; None for a file
    that no model kind serves (a tagger, say)."""
    try:
        meta = read_metadata(path)
    except (OSError, ValueError) as e:
        return {"id": model_id, "source": source, "version": path.name, "error": str(e), "active": False}
    try:
        kind = kind_for_arch(meta.get("config", {}).get("arch")).name
    except ValueError:  # a network no kind serves: a tagger, a discriminator
        return None
    return {"id": model_id, "source": source, "kind": kind, "version": weights_version(path, meta),
            "active": path == active.get(kind), "step": meta.get("step"), "kimg": meta.get("kimg"),
            "train_minutes": meta.get("train_minutes"), "images": meta.get("images"), "preset": meta.get("preset"),
            "config": meta.get("config", {}), "size_mb": round(path.stat().st_size / 2**20, 2)}


def model_files(data_dir: Path) -> dict[str, Path]:
    """Every version a rollback can go to: each kind's bundled weights and each promoted file, by id."""
    bundled = {"bundled" if name == "face" else f"bundled-{name}": kind.bundled for name, kind in KINDS.items()
               if kind.bundled is not None}
    kept = {p.stem: p for p in sorted(models_dir(data_dir).glob("*.safetensors")) if MODEL_ID.match(p.stem)}
    return {**bundled, **kept}


def run_export(folder: Path) -> Path | None:
    """The weights a training run exported, if it has."""
    return next((folder / name for name in EXPORTS if (folder / name).is_file()), None)


def lifecycle(core: Core) -> Lifecycle:
    """This bot's model lifecycle: the retrainer's (it knows the configured weights), else one for this process's
    generator that takes the bundled weights as what serves when nothing was promoted."""
    if core.retrainer is not None:
        return core.retrainer.lifecycle
    return Lifecycle(core.store.data_dir, core.store.db, {k: kind.bundled for k, kind in KINDS.items()},
                     [core.generator])


async def models(request: web.Request) -> web.Response:
    core: Core = request.app[CORE]
    defaults = lifecycle(core).defaults

    def read() -> dict[str, Any]:
        promoted = {kind: read_active(core.store.data_dir, kind) for kind in KINDS}
        active = {kind: a.weights if a else defaults.get(kind) for kind, a in promoted.items()}
        versions = [model_entry(i, "bundled" if i.startswith("bundled") else f"models/{p.name}", p, active)
                    for i, p in model_files(core.store.data_dir).items()]
        candidates = [model_entry(f"run:{name}", f"runs/{name}", export, {})
                      for name, folder in run_folders(request.app[RUNS]).items()
                      if (export := run_export(folder)) is not None]
        return {"serving": {kind: m.version for kind, m in core.generator.models.items()},
                "versions": [v for v in versions if v], "candidates": [c for c in candidates if c and "kind" in c]}
    return web.json_response(await asyncio.to_thread(read))


async def promote(request: web.Request) -> web.Response:
    """``{"model": "<id>"}`` (a kept version: rollback) or ``{"model": "run:<name>"}`` (a run's export), of any
    model kind. Through the model lifecycle: this process's generator serves it by the time this answers, the
    registry records it, and other processes follow within seconds."""
    core: Core = request.app[CORE]
    wanted = str((await json_body(request)).get("model", ""))
    if wanted.startswith("run:"):
        folder = run_folders(request.app[RUNS]).get(wanted[4:])
        source = run_export(folder) if folder else None
    else:
        source = model_files(core.store.data_dir).get(wanted) if MODEL_ID.match(wanted) else None
    if source is None or not source.is_file():
        raise web.HTTPNotFound(text="no such model")
    try:
        active = await lifecycle(core).promote_file(source, DASHBOARD, "promoted in the dashboard")
    except (OSError, ValueError, WorkerFailed) as e:
        raise web.HTTPBadRequest(text=f"refused: {e}") from None
    return web.json_response({"active": active.version, "kind": active.kind})


def record_json(record: ModelRecord) -> dict[str, Any]:
    return {"version": record.version, "parent": record.parent, "state": record.state, "reason": record.reason,
            "metrics": record.metrics, "parent_metrics": record.parent_metrics, "created_at": record.created_at,
            "updated_at": record.updated_at, "weights": record.path is not None and record.path.is_file(),
            "grid": f"/registry/{quote(record.version)}/grid" if record.grid and record.grid.is_file() else None}


async def registry(request: web.Request) -> web.Response:
    """The model registry: every version the retrainer made or started from, its state, figures and reasons."""
    retrainer = request.app[CORE].retrainer
    if retrainer is None:
        return web.json_response({"enabled": False, "running": None, "models": []})
    running = retrainer.running
    return web.json_response({"enabled": True, "running": running[0] if running else None,
                              "models": [record_json(r) for r in await retrainer.models()]})


async def registry_grid(request: web.Request) -> web.FileResponse:
    """A version's before/after sample grid, found through its registry row (the version is only a key)."""
    retrainer = request.app[CORE].retrainer
    records = {r.version: r for r in await retrainer.models()} if retrainer else {}
    record = records.get(request.match_info["version"])
    if record is None or record.grid is None or not record.grid.is_file():
        raise web.HTTPNotFound(text="no such grid")
    return web.FileResponse(record.grid, headers={"Cache-Control": "no-cache"})


async def registry_action(request: web.Request) -> web.Response:
    """``{"action": "rollback", "version": "ft-..."}`` serves that version again; ``{"action": "retrain"}``
    starts a run now. The retrainer's own answer comes back, as /rollback and /retrain give it in chat."""
    retrainer = request.app[CORE].retrainer
    if retrainer is None:
        raise web.HTTPConflict(text="Retraining is not set up in this moebot.")
    body = await json_body(request)
    if body.get("action") == "retrain":
        return web.json_response({"message": await retrainer.start(DASHBOARD)})
    if body.get("action") != "rollback":
        raise web.HTTPBadRequest(text="action must be rollback or retrain")
    try:
        message = await retrainer.rollback(str(body.get("version", ""))[:100], DASHBOARD)
    except ValueError as e:
        raise web.HTTPConflict(text=f"I can't roll back: {e}.") from None
    return web.json_response({"message": message})


async def metrics(request: web.Request) -> web.Response:
    generator = request.app[CORE].generator
    m = generator.metrics
    return web.json_response({**m.summary(), "version": generator.version, "max_batch": generator.options.max_batch,
                              "batch_sizes": sorted(m.batch_sizes.items())})


def add_routes(app: web.Application, runs_dir: Path) -> None:
    app[RUNS] = runs_dir
    app.router.add_get("/api/gallery", gallery)
    app.router.add_get(r"/pictures/{id:\d{1,18}}", picture)
    app.router.add_get("/api/queue", queue)
    app.router.add_get(r"/items/{id:\d{1,18}}", item_face)
    app.router.add_post(r"/api/queue/{id:\d{1,18}}", curate)
    app.router.add_get("/api/runs", runs)
    app.router.add_get("/runs/{run}/{file}", run_file)
    app.router.add_get("/api/models", models)
    app.router.add_post("/api/models/promote", promote)
    app.router.add_get("/api/registry", registry)
    app.router.add_get("/registry/{version}/grid", registry_grid)
    app.router.add_post("/api/registry", registry_action)
    app.router.add_get("/api/metrics", metrics)
