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

from aiohttp import web

from bot.core import Core
from bot.store import VOTE_FILTERS, GalleryFilter
from bot.web.adapter import CORE, json_body
from generator.active_model import models_dir, promote_file, read_active
from generator.weights import BUNDLED_GENERATOR, read_metadata, weights_version

PER_PAGE = 24
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
RUN_FILE = re.compile(r"^(loss\.png|fakes\d{6}\.png)$")
MODEL_ID = re.compile(r"^([0-9a-f]{12}|bundled)$")
RUNS = web.AppKey("runs", Path)
FACE_ARCHS = ("acgan", "seed-acgan")  # what the face generator service can serve (a sketch model cannot)


async def gallery(request: web.Request) -> web.Response:
    """``?tags=pink&votes=up&platform=web&kind=face&page=2`` → one page of pictures with their votes."""
    q = request.query
    votes = q.get("votes", "")
    if votes and votes not in VOTE_FILTERS:
        raise web.HTTPBadRequest(text=f"votes must be one of {', '.join(VOTE_FILTERS)}")
    try:
        page = max(1, int(q.get("page", "1")))
    except ValueError:
        raise web.HTTPBadRequest(text="page must be a number") from None
    where = GalleryFilter(q.get("tags", "")[:100], votes, q.get("platform", "")[:20], q.get("kind", "")[:20])
    store = request.app[CORE].store
    items, total = await store.gallery(where, page, PER_PAGE)
    platforms, kinds = await store.platforms_and_kinds()
    return web.json_response({
        "items": [{**item.__dict__, "url": f"/pictures/{item.id}"} for item in items],
        "page": page, "pages": max(1, -(-total // PER_PAGE)), "total": total,
        "platforms": platforms, "kinds": kinds})


async def picture(request: web.Request) -> web.FileResponse:
    path = await request.app[CORE].store.picture_file(int(request.match_info["id"]))
    if path is None or not path.is_file():
        raise web.HTTPNotFound(text="no such picture")
    return web.FileResponse(path, headers={"Cache-Control": "private, max-age=86400"})


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


def model_entry(model_id: str, source: str, path: Path, active: Path | None) -> dict[str, Any]:
    try:
        meta = read_metadata(path)
    except (OSError, ValueError) as e:
        return {"id": model_id, "source": source, "version": path.name, "error": str(e), "active": False}
    return {"id": model_id, "source": source, "version": weights_version(path, meta), "active": path == active,
            "step": meta.get("step"), "kimg": meta.get("kimg"), "train_minutes": meta.get("train_minutes"),
            "images": meta.get("images"), "preset": meta.get("preset"), "config": meta.get("config", {}),
            "size_mb": round(path.stat().st_size / 2**20, 2)}


def model_files(data_dir: Path) -> dict[str, Path]:
    """Every version a rollback can go to: the bundled weights and each promoted file, by id."""
    kept = {p.stem: p for p in sorted(models_dir(data_dir).glob("*.safetensors")) if MODEL_ID.match(p.stem)}
    return {"bundled": BUNDLED_GENERATOR, **kept}


async def models(request: web.Request) -> web.Response:
    core: Core = request.app[CORE]

    def read() -> dict[str, Any]:
        active = read_active(core.store.data_dir)
        versions = [model_entry(i, "bundled" if i == "bundled" else f"models/{p.name}", p,
                                active.weights if active else BUNDLED_GENERATOR)
                    for i, p in model_files(core.store.data_dir).items()]
        candidates = [model_entry(f"run:{name}", f"runs/{name}", folder / "generator.safetensors", None)
                      for name, folder in run_folders(request.app[RUNS]).items()
                      if (folder / "generator.safetensors").is_file()]
        candidates = [c for c in candidates if c.get("config", {}).get("arch") in FACE_ARCHS]
        return {"serving": core.model_version, "versions": versions, "candidates": candidates}
    return web.json_response(await asyncio.to_thread(read))


async def promote(request: web.Request) -> web.Response:
    """``{"model": "<id>"}`` (a kept version: rollback) or ``{"model": "run:<name>"}`` (a run's export).

    The running generator service follows the pointer within seconds, as after ``moebot models promote``.
    """
    core: Core = request.app[CORE]
    wanted = str((await json_body(request)).get("model", ""))
    if wanted.startswith("run:"):
        folder = run_folders(request.app[RUNS]).get(wanted[4:])
        source = folder / "generator.safetensors" if folder else None
    else:
        source = model_files(core.store.data_dir).get(wanted) if MODEL_ID.match(wanted) else None
    if source is None or not source.is_file():
        raise web.HTTPNotFound(text="no such model")
    try:
        active = await asyncio.to_thread(promote_file, core.store.data_dir, source)
    except (OSError, ValueError) as e:
        raise web.HTTPBadRequest(text=f"refused: {e}") from None
    return web.json_response({"active": active.version})


async def metrics(request: web.Request) -> web.Response:
    generator = request.app[CORE].generator
    m = generator.metrics
    return web.json_response({**m.summary(), "version": generator.version, "max_batch": generator.options.max_batch,
                              "batch_sizes": sorted(m.batch_sizes.items())})


def add_routes(app: web.Application, runs_dir: Path) -> None:
    app[RUNS] = runs_dir
    app.router.add_get("/api/gallery", gallery)
    app.router.add_get(r"/pictures/{id:\d{1,18}}", picture)
    app.router.add_get("/api/runs", runs)
    app.router.add_get("/runs/{run}/{file}", run_file)
    app.router.add_get("/api/models", models)
    app.router.add_post("/api/models/promote", promote)
    app.router.add_get("/api/metrics", metrics)
