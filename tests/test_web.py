"""The playground and the dashboard for real: an aiohttp server on loopback in front of a real Core, generator
service and SQLite file, driven by Debian's Chromium through Playwright (HTTP-level checks: test_web_http.py).

The tests that see the bundled generator's faces also take the README's screenshots: into the folder
``$MOEBOT_SCREENSHOTS`` names (``MOEBOT_SCREENSHOTS=docs pytest tests/test_web.py`` renews docs/), else into
a temporary folder, so a test run leaves the work tree as it was.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from playwright.sync_api import expect, sync_playwright

from bot.commands import COMMANDS, parse
from bot.config import WebConfig
from bot.store import NewPicture
from bot.web import server
from bot.web.adapter import LOCAL
from fakes.bot_parts import tiny_weights
from fakes.served_web import Served
from generator.active_model import read_active
from generator.images import grid, png_bytes, to_pil
from generator.weights import BUNDLED_GENERATOR, read_metadata, weights_version

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ADMIN_TOKEN = "s3cret-admin-Vq7LmZ2xPw9KdR4t"  # long and varied enough to be accepted
DOCS = Path(os.environ.get("MOEBOT_SCREENSHOTS") or tempfile.mkdtemp(prefix="moebot-screenshots-"))


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium (never a browser download): installed here when missing and we are root."""
    if not CHROMIUM.exists():
        if os.geteuid() != 0:
            pytest.fail("the browser tests need Debian's chromium: sudo apt-get install -y chromium")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium):
    """Module-wide: Playwright's sync API keeps an event loop running in this thread while it is open."""
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The bundled generators, so the screenshots show real faces (a face takes milliseconds on the CPU)."""
    root = tmp_path_factory.mktemp("web")
    s = Served(root / "data", root / "runs", BUNDLED_GENERATOR)
    yield s
    s.close()


@pytest.fixture
def page(browser, served):
    context = browser.new_context(viewport={"width": 1100, "height": 760})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    context.close()


def say(page, text: str) -> Any:
    """Type a command into the chat and wait for moebot's answer; returns that message."""
    before = page.locator(".msg.bot").count()
    page.fill("#text", text)
    page.press("#text", "Enter")
    answer = page.locator(".msg.bot").nth(before)
    answer.locator(".status").or_(answer.locator(".text:not(:empty)")).first.wait_for()
    answer.locator(".text:not(:empty)").wait_for()
    return answer


def wait_loaded(page, img, width: int | None = None) -> None:
    """Wait until the picture has arrived and decoded (a missing or broken file never gets a width)."""
    img.wait_for()
    page.wait_for_function("([i, w]) => i.complete && i.naturalWidth > 0 && (w === null || i.naturalWidth === w)",
                           arg=[img.element_handle(), width])


def test_a_typed_command_draws_a_face_and_votes_change_its_counts(served, page):
    page.goto(served.url)
    answer = say(page, "/waifu pink blue")
    assert "pink hair, blue eyes" in answer.locator(".text").inner_text()
    wait_loaded(page, answer.locator(".files img"), 256)
    up = answer.locator("button.vote").first
    assert up.inner_text() == "👍 Good 0"  # words too: without an emoji font 👍 and 👎 are the same box
    up.click()
    expect(answer.locator("button.vote").first).to_have_text("👍 Good 1")
    expect(answer.get_by_role("button", name="Good: 1 vote", exact=True)).to_be_visible()
    assert "You voted" in answer.locator(".notice").inner_text()
    picture = int(answer.locator("button.vote").first.get_attribute("data-vote").split(":")[1])
    assert sqlite3.connect(served.db).execute("SELECT value FROM votes WHERE picture_id = ?", (picture,)).fetchall() \
        == [(1,)]
    answer.get_by_role("button", name="Bad: 0 votes", exact=True).click()  # the other button changes the vote
    expect(answer.locator("button.vote").nth(1)).to_have_text("👎 Bad 1")
    assert answer.locator("button.vote").first.inner_text() == "👍 Good 0"

    wrong = say(page, "/waifu pnk blue")
    assert wrong.locator(".text").inner_text() == "unknown hair colour 'pnk' — did you mean pink?"
    assert "refusal" in (wrong.get_attribute("class") or "")
    blonde = say(page, "/waifu blonde red")
    wait_loaded(page, blonde.locator(".files img"))
    blonde.locator("button.vote").first.click()
    expect(blonde.locator("button.vote").first).to_have_text("👍 Good 1")
    page.screenshot(path=DOCS / "playground.png", full_page=True)

    page.reload()  # the pictures come back with their counts, and their buttons still vote
    earlier = page.locator(".msg.earlier")
    expect(earlier.nth(-2).locator("button.vote")).to_have_text(["👍 Good 0", "👎 Bad 1"])
    last = earlier.last
    expect(last.locator(".text")).to_have_text("blonde hair, red eyes")
    wait_loaded(page, last.locator(".files img"))
    last.locator("button.vote").nth(1).click()
    expect(last.locator("button.vote")).to_have_text(["👍 Good 0", "👎 Bad 1"])
    blonde_id = int(last.locator("button.vote").first.get_attribute("data-vote").split(":")[1])
    assert sqlite3.connect(served.db).execute("SELECT value FROM votes WHERE picture_id = ?", (blonde_id,)) \
        .fetchall() == [(-1,)]


def test_grid_morph_top_and_help_answer_in_the_page(served, page):
    page.goto(served.url)
    hairs = say(page, "/grid hair")
    assert "every hair colour" in hairs.locator(".text").inner_text()
    wait_loaded(page, hairs.locator(".files img"))
    morph = say(page, "/morph pink blue blonde red")
    assert "→" in morph.locator(".text").inner_text()
    wait_loaded(page, morph.locator(".files img"))
    assert morph.locator(".files img").get_attribute("alt").endswith(".gif")
    assert "/waifu" in say(page, "/help").locator(".text").inner_text()
    assert "Draw on the pad" in say(page, "/sketch").locator(".text").inner_text()  # a bare /sketch: how, here
    assert "I don't know the command /nope" in say(page, "/nope").locator(".text").inner_text()


def test_the_input_suggests_every_command_of_the_registry(served, page):
    """The playground's suggestions come from the command registry, as /help and the chat menus do."""
    page.goto(served.url)
    page.wait_for_function("document.querySelectorAll('#commands option').length > 0")
    options = page.eval_on_selector_all("#commands option", "os => os.map(o => [o.value, o.label])")
    assert [value for value, _ in options] == [f"/{spec.name}" for spec in COMMANDS]
    assert options[0][1].startswith("/waifu [hair] [eye] [count] [seed] — draw faces")
    assert page.locator("#text").get_attribute("list") == "commands"


def test_user_text_is_shown_as_text_never_run_as_html(served, page):
    page.goto(served.url)
    attack = '<img src=x onerror="window.pwned=1"><b>bold</b>'
    answer = say(page, f"/waifu {attack}")
    assert "<img" in answer.locator(".text").inner_text()  # the polite answer quotes it, as text
    assert page.locator(".msg img[src='x']").count() == 0 and page.locator(".msg b").count() == 0
    assert page.evaluate("window.pwned") is None
    assert page.locator(".msg.me .text").last.inner_text() == f"/waifu {attack}"


def test_a_queued_drawing_shows_progress_and_its_place(served, page, monkeypatch):
    """While others are drawing the page says so, then shows the queue position the Core reports."""
    core = served.core
    monkeypatch.setattr(type(core), "will_wait", lambda self, faces: True)
    monkeypatch.setattr(type(core), "waiting", lambda self: 3)
    gate = asyncio.Event()
    real_faces = type(core.generator).faces

    async def slow_faces(self, *args, **kwargs):
        await gate.wait()
        return await real_faces(self, *args, **kwargs)
    monkeypatch.setattr(type(core.generator), "faces", slow_faces)
    page.goto(served.url)
    page.fill("#text", "/waifu aqua green")
    page.press("#text", "Enter")
    status = page.locator(".msg.bot .status")
    status.wait_for()
    page.wait_for_function("s => s.textContent.includes('number 3 in the queue')", arg=status.element_handle())
    served.loop.call_soon_threadsafe(gate.set)
    page.locator(".msg.bot .files img").wait_for()
    assert page.locator(".msg.bot .status").count() == 0


def dark_pixels(page) -> int:
    return page.evaluate("""() => {
        const c = document.getElementById('pad');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] < 128) n++;
        return n;
    }""")


def stroke(page, points: list[tuple[float, float]]) -> None:
    box = page.locator("#pad").bounding_box()
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=6)
    page.mouse.up()


def test_the_sketch_pad_draws_with_the_mouse_undoes_and_clears(served, page):
    page.goto(served.url)
    assert dark_pixels(page) == 0
    stroke(page, [(60, 60), (200, 60), (200, 200)])
    one = dark_pixels(page)
    stroke(page, [(40, 220), (220, 30)])
    two = dark_pixels(page)
    assert 0 < one < two
    page.click("#undo")
    assert dark_pixels(page) == one
    page.click("#clear")
    assert dark_pixels(page) == 0
    page.click("#convert")  # nothing drawn: the page says so instead of sending a blank
    assert "Draw something" in page.locator(".msg.refusal .text").last.inner_text()


def test_a_finger_draws_on_the_pad_too(served, browser):
    """Pointer events: touch draws like the mouse (a tap leaves a dot)."""
    context = browser.new_context(has_touch=True, viewport={"width": 420, "height": 900})
    try:
        touch = context.new_page()
        touch.goto(served.url)
        touch.locator("#log[data-history='shown']").wait_for(state="attached")  # earlier pictures move the pad
        touch.locator("#pad").scroll_into_view_if_needed()
        box = touch.locator("#pad").bounding_box()
        touch.touchscreen.tap(box["x"] + 100, box["y"] + 100)
        assert dark_pixels(touch) > 0
    finally:
        context.close()


def test_a_sketch_drawn_on_the_pad_is_painted_as_a_face(served, page):
    page.goto(served.url)
    stroke(page, [(128, 30), (60, 90), (70, 200), (128, 235), (190, 200), (200, 90), (128, 30)])  # a head
    stroke(page, [(95, 110), (105, 110)])
    stroke(page, [(150, 110), (160, 110)])
    page.fill("#words", "pink blue seed:7")
    before = page.locator(".msg.bot").count()
    page.click("#convert")
    answer = page.locator(".msg.bot").nth(before)
    answer.locator(".text:not(:empty)").wait_for()
    assert answer.locator(".text").inner_text().startswith("your sketch → pink hair, blue eyes · seed 7")
    wait_loaded(page, answer.locator(".files img"))
    assert answer.locator("button.vote").count() == 2
    assert page.locator(".msg.me").last.inner_text().startswith("/sketch pink blue seed:7")
    db = sqlite3.connect(served.db)
    assert db.execute("SELECT platform, filename FROM uploads ORDER BY id DESC LIMIT 1").fetchone() == \
        ("web", "sketch.png")
    assert db.execute("SELECT kind, platform FROM pictures ORDER BY id DESC LIMIT 1").fetchone() == ("sketch", "web")
    page.screenshot(path=DOCS / "playground-sketch.png", full_page=True)


def test_an_uploaded_sketch_obeys_the_chat_upload_rules(served, page, tmp_path, monkeypatch):
    from generator.sketch_input import UploadLimits

    page.goto(served.url)

    def upload(path: Path) -> str:
        before = page.locator(".msg.bot").count()
        page.set_input_files("#upload", str(path))
        answer = page.locator(".msg.bot").nth(before)
        answer.locator(".text:not(:empty)").wait_for()
        return answer.locator(".text").inner_text()

    (tmp_path / "notes.txt").write_text("not a picture")
    assert "not a picture I can read" in upload(tmp_path / "notes.txt")
    Image.new("L", (10, 10), 255).save(tmp_path / "tiny.png")
    assert "only 10x10 pixels" in upload(tmp_path / "tiny.png")
    Image.new("L", (300, 300), 255).save(tmp_path / "blank.png")
    assert "looks blank" in upload(tmp_path / "blank.png")
    drawing = Image.new("L", (300, 300), 255)
    ImageDraw.Draw(drawing).ellipse([60, 40, 240, 270], outline=0, width=6)
    drawing.save(tmp_path / "drawing.png")
    assert upload(tmp_path / "drawing.png").startswith("your sketch → ")
    before = page.locator(".msg.bot").count()
    page.evaluate("""bytes => {  // a file dropped on the drop zone, as a file manager would
        const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(bytes)], "dropped.png", {type: "image/png"}));
        document.getElementById("drop").dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true}));
    }""", list((tmp_path / "drawing.png").read_bytes()))
    page.locator(".msg.bot").nth(before).locator(".text:not(:empty)").wait_for()
    assert page.locator(".msg.bot").nth(before).inner_text().startswith("your sketch → ")
    assert sqlite3.connect(served.db).execute("SELECT filename FROM uploads ORDER BY id DESC LIMIT 1").fetchone() \
        == ("dropped.png",)
    monkeypatch.setattr(served.core, "uploads", UploadLimits(max_bytes=2000))
    noisy = Image.frombytes("L", (200, 200), os.urandom(40_000))
    noisy.save(tmp_path / "big.png")
    assert "I take files up to 2 KB" in upload(tmp_path / "big.png")  # refused by its announced size, unread


def test_a_submitted_face_gets_a_tag_card_and_waits_for_review(served, page, tmp_path):
    """/submit from the playground: the same reply as in chat (vote buttons, a tag card whose presses
    re-tag the face), and the face waits in the pending queue."""
    drawn = served.call(served.core.generator.faces([11], [3], [5]))  # blonde hair, yellow eyes
    to_pil(drawn.images[0], 256).save(tmp_path / "face.png")
    page.goto(served.url)
    page.select_option("#upload-as", "/submit")
    page.fill("#words", "blonde yellow")
    page.set_input_files("#upload", str(tmp_path / "face.png"))
    card = page.locator(".msg.bot", has=page.locator("button[data-press^='tag:']")).last
    card.wait_for()
    assert page.locator(".msg.me").last.inner_text().startswith("/submit blonde yellow")
    item = int(card.locator("button[data-press^='tag:']").first.get_attribute("data-press").split(":")[1])
    assert served.call(served.core.store.item(item)).status == "pending"
    card.locator("button[data-press$=':h:7']").click()  # pink hair
    expect(card.locator(".notice").last).to_have_text("Hair: pink")
    expect(card.locator("button[data-press$=':h:7']")).to_contain_text("✓")
    assert served.call(served.core.store.item(item)).hair == 7
    assert "Submissions" not in say(page, "/submit").locator(".text").inner_text()  # a bare /submit: how, here


def test_the_gallery_lists_pictures_and_its_filters_narrow_them(served, page):
    voted = served.call(draw(served, "/waifu blonde red"))
    served.call(served.core.vote(LOCAL, f"vote:{voted}:up"))
    served.call(draw(served, "/waifu black yellow"))
    page.goto(served.url + "dashboard")
    cards = page.locator(".card")
    cards.first.wait_for()
    total = cards.count()
    assert total >= 2
    first = cards.first.locator("img")
    wait_loaded(page, first)
    assert "black hair, yellow eyes" in cards.first.inner_text()  # newest first
    page.screenshot(path=DOCS / "dashboard.png")

    page.fill("input[name=tags]", "black yellow")
    page.click("#filters button[type=submit]")
    page.wait_for_function("n => document.querySelectorAll('.card').length === n", arg=count_tagged(served, "black"))
    assert all("black hair" in t for t in cards.all_inner_texts())
    page.fill("input[name=tags]", "")
    page.select_option("select[name=votes]", "none")
    page.click("#filters button[type=submit]")
    unvoted = sqlite3.connect(served.db).execute(
        "SELECT COUNT(*) FROM pictures WHERE id NOT IN (SELECT picture_id FROM votes)").fetchone()[0]
    expect(page.locator("#total")).to_have_text(f"{unvoted} pictures")
    assert unvoted < total and all("👍 0 👎 0" in t for t in cards.all_inner_texts())
    page.select_option("select[name=votes]", "")
    page.select_option("select[name=platform]", "web")
    page.click("#filters button[type=submit]")
    page.wait_for_function("n => document.getElementById('total').textContent === `${n} pictures`", arg=total)


def test_curation_approve_moves_a_pending_item_to_curated_and_retag_changes_its_tags(served, page):
    """A submission waits in the pending queue; the dashboard approves one, rejects one, re-tags one."""
    store = served.core.store

    async def submit_two() -> list[int]:
        waiting = {item.id for item in (await store.queue("pending", 1, 100))[0]}
        user = await store.user("telegram", "77", "ann")
        drawn = await served.core.generator.faces([7, 7], [9, 9], [11, 12])  # faces as a user might send them
        for face in (to_pil(image) for image in drawn.images):
            meta = NewPicture("submission", "telegram", "c", user, "pink hair, blue eyes", "submitted", hair=7, eye=9)
            await store.add_submission(face, png_bytes(face), meta, "telegram:77", "face.png")
        return [item.id for item in (await store.queue("pending", 1, 100))[0] if item.id not in waiting]
    first, second = served.call(submit_two())
    page.goto(served.url + "dashboard#curation")
    card = page.locator(f".card[data-item='{first}']")
    card.wait_for()
    wait_loaded(page, card.locator("img"))
    pending = len(served.call(store.queue("pending", 1, 100))[0])
    expect(page.locator("[data-queue='pending'] span")).to_have_text(f"({pending})")
    page.screenshot(path=DOCS / "dashboard-curation.png")
    card.locator("button[data-action='approve']").click()
    expect(card).to_have_count(0)  # gone from the pending queue
    expect(page.locator("[data-queue='curated'] span")).to_have_text("(1)")
    page.click("[data-queue='curated']")
    curated = page.locator(f".card[data-item='{first}']")
    expect(curated).to_contain_text("pink hair, blue eyes")
    assert curated.locator("button[data-action='approve']").count() == 0  # decided: only re-tag is left
    curated.locator("select[aria-label='hair']").select_option(label="blonde hair")
    curated.locator("button[data-action='retag']").click()
    expect(page.locator(f".card[data-item='{first}'] .tags")).to_have_text("blonde hair, blue eyes")
    page.click("[data-queue='pending']")
    page.locator(f".card[data-item='{second}'] button[data-action='reject']").click()
    expect(page.locator("[data-queue='rejected'] span")).to_have_text("(1)")
    log = sqlite3.connect(served.db).execute(
        "SELECT image_id, new_status, hair, actor, reason FROM curation_log WHERE actor = 'web:dashboard' ORDER BY id")
    assert log.fetchall() == [(first, "curated", 7, "web:dashboard", "approved in the dashboard"),
                              (first, "curated", 11, "web:dashboard", "re-tagged"),
                              (second, "rejected", 7, "web:dashboard", "rejected in the dashboard")]
    assert served.request(f"/api/queue/{first}", {"action": "reject"}, {"X-CSRF-Token": served.csrf})[0] == 409
    page.goto(served.url + "dashboard#gallery")  # the gallery's state filter sees the same decisions
    page.select_option("select[name=state]", "curated")
    page.click("#filters button[type=submit]")
    expect(page.locator("#total")).to_have_text("1 pictures")
    expect(page.locator("#pictures .card .meta").first).to_contain_text("submission · telegram · curated")


def count_tagged(served, hair: str) -> int:
    return sqlite3.connect(served.db).execute("SELECT COUNT(*) FROM pictures WHERE tags LIKE ?",
                                              (f"{hair} hair%",)).fetchone()[0]


async def draw(served, text: str) -> int:
    """Draw as the playground's user would; the picture's id."""
    reply = await served.core.handle(LOCAL, parse(text))
    assert reply.files, reply.text
    return reply.buttons.picture_id


def make_run(runs_dir: Path, name: str, version: str) -> Path:
    """A run folder as training leaves it: options, stats, loss curve, two sample grids, exported weights."""
    from training.plots import loss_curve
    from training.runs import RunFolder

    run = RunFolder(runs_dir / name)
    run.path.mkdir(parents=True)
    (run.path / "options.json").write_text(json.dumps({"preset": "default", "g_ch": 4}))
    for step in (25, 50, 75):
        run.log(step, d_adv=2.0 - step / 100, g_adv=1.0 + step / 100, kimg=step * 64 / 1000)
    loss_curve(run.stats, run.path / "loss.png", ("d_adv", "g_adv"))
    for step, colour in ((500, (255, 0, 0)), (1000, (0, 0, 255))):
        Image.new("RGB", (66, 66), colour).save(run.path / f"fakes{step:06d}.png")
    tiny_weights(run.path / "generator.safetensors", seed=5, version=version)
    return run.path


def test_runs_show_curves_and_grids_and_models_promote_and_roll_back(served, page):
    make_run(served.core.store.data_dir.parent / "runs", "faces-small", "small-v1")
    page.goto(served.url + "dashboard#runs")
    run = page.locator(".run[data-run='faces-small']")
    run.wait_for()
    imgs = run.locator("img")
    for i in range(2):
        wait_loaded(page, imgs.nth(i))
    assert "step 75" in run.inner_text()
    assert imgs.nth(1).get_attribute("src").endswith("fakes001000.png")  # the latest grid first
    run.locator("input[type=range]").fill("0")
    assert imgs.nth(1).get_attribute("src").endswith("fakes000500.png")
    assert "samples at step 500" in run.inner_text()

    page.goto(served.url + "dashboard#models")
    page.locator("#candidates button[data-model='run:faces-small']").click()
    page.locator("#versions tr.active", has_text="small-v1").wait_for()
    assert read_active(served.core.store.data_dir).version == "small-v1"
    page.locator("#versions button[data-model='bundled']").click()  # roll back
    bundled = weights_version(BUNDLED_GENERATOR, read_metadata(BUNDLED_GENERATOR))
    page.locator("#versions tr.active", has_text=bundled).wait_for()  # a kept copy of the bundled file
    assert read_active(served.core.store.data_dir).version == bundled


def test_the_registry_shows_versions_with_their_figures_and_serves_an_earlier_one(served, page, monkeypatch):
    """A retraining run's candidate, rejected by the gate, is listed beside the active model with both
    models' figures; "serve this" rolls back to it through the retrainer, as /rollback does."""
    from bot.config import TrainingConfig
    from bot.retraining import Retrainer
    from training import registry

    data_dir = served.core.store.data_dir
    db = served.core.store.db
    retrainer = Retrainer(TrainingConfig(), data_dir, db, BUNDLED_GENERATOR)
    monkeypatch.setattr(served.core, "retrainer", retrainer)
    serving = served.call(retrainer.models())[0].version  # registers what serves now
    run_dir = data_dir / "retrain" / "ft-test"
    run_dir.mkdir(parents=True)
    weights = tiny_weights(run_dir / "generator.safetensors", version="ft-test")
    before_after = served.call(served.core.generator.faces([7, 7, 7, 11, 11, 11], [9, 9, 9, 3, 3, 3], range(6)))
    grid(before_after.images, 3).save(run_dir / "before_after.png")
    served.call(registry.begin(db, "ft-test", serving, run_dir))
    served.call(registry.record_result(db, "ft-test", weights, {"hair_ratio": 1.01, "fd": 6.2},
                                       {"hair_ratio": 1.03, "fd": 5.2}, run_dir / "before_after.png", 0, []))
    served.call(registry.set_state(db, "ft-test", "rejected", "the gate: FD rose 19%"))
    page.goto(served.url + "dashboard#models")
    row = page.locator("#registry tr", has_text="ft-test")
    expect(row).to_contain_text("rejected")
    expect(row).to_contain_text("hair_ratio: 1.03 → 1.01")
    expect(row).to_contain_text("the gate: FD rose 19%")
    wait_loaded(page, row.locator("img.thumb"))
    page.screenshot(path=DOCS / "dashboard-models.png", full_page=True)
    row.locator("button[data-version='ft-test']").click()
    expect(page.locator("#model-notice")).to_contain_text("Rolled back: ft-test draws again")
    expect(page.locator("#registry tr.active")).to_contain_text("ft-test")
    assert read_active(data_dir).version == "ft-test"
    status, text = served.request("/api/registry", {"action": "rollback", "version": "ft-test"},
                                  {"X-CSRF-Token": served.csrf})
    assert status == 409 and "already the active model" in text
    assert served.request("/registry/nope/grid")[0] == 404


def test_the_generator_page_shows_live_metrics(served, page):
    served.call(draw(served, "/waifu red aqua"))
    page.goto(served.url + "dashboard#generator")
    requests = page.locator(".figure[data-figure='requests'] b")
    requests.wait_for()
    assert int(requests.inner_text()) >= 1
    assert "faces/s" in page.locator(".figure[data-figure='throughput']").inner_text()
    assert page.locator("#batches tr").count() >= 2  # the header and at least one batch size


def test_changes_need_the_pages_csrf_token_and_origin(served):
    vote = {"id": "vote:1:up"}
    assert served.request("/api/vote", vote)[0] == 403
    assert served.request("/api/vote", vote, {"X-CSRF-Token": "guess"})[0] == 403
    assert served.request("/api/vote", vote, {"X-CSRF-Token": served.csrf, "Origin": "http://evil.example"})[0] \
        == 403
    assert served.request("/api/models/promote", {"model": "bundled"})[0] == 403
    status, _ = served.request("/api/vote", vote, {"X-CSRF-Token": served.csrf, "Origin": served.url.rstrip("/")})
    assert status == 200
    assert served.csrf in served.request("/")[1]  # the page carries it: only a page read from here can write
    with urllib.request.urlopen(served.url) as r:
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        assert r.headers["Cross-Origin-Resource-Policy"] == "same-origin"
    # a DNS-rebinding page reaches the server under a foreign name, and is turned away
    assert served.request("/", headers={"Host": "evil.example"})[0] == 421


def test_files_are_found_by_id_or_by_a_checked_name_only(served):
    assert served.request("/pictures/999999")[0] == 404
    assert served.request("/files/not-a-key")[0] == 404
    assert served.request("/files/..%2Fmoebot.db")[0] == 404  # the shelf is a folder: a key names a file in it only
    make_run(served.core.store.data_dir.parent / "runs", "checked", "checked-v1")
    assert served.request("/runs/checked/loss.png")[0] == 200
    for path in ("/runs/checked/options.json", "/runs/checked/generator.safetensors", "/runs/..%2F..%2Fetc/passwd",
                 "/runs/checked/..%2Foptions.json", "/runs/nope/loss.png"):
        assert served.request(path)[0] == 404, path
    assert served.request("/api/models/promote", {"model": "../../etc/passwd"}, {"X-CSRF-Token": served.csrf})[0] \
        == 404


def test_with_an_admin_token_beyond_loopback_every_page_and_change_needs_it(browser, tmp_path):
    s = Served(tmp_path / "data", tmp_path / "runs", tiny_weights(tmp_path / "tiny.safetensors"),
               admin_token=ADMIN_TOKEN, host="0.0.0.0")
    try:
        assert s.request("/api/gallery")[0] == 401
        assert s.request("/api/command", {"text": "/help"}, {"X-CSRF-Token": s.csrf})[0] == 401
        assert s.request("/api/gallery", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert s.request("/api/gallery", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})[0] == 200
        context = browser.new_context()
        page = context.new_page()
        page.goto(s.url + "dashboard")
        assert page.url.endswith("/login")
        page.fill("input[name=token]", "wrong")
        page.click("button[type=submit]")
        assert "Wrong token" in page.content()
        page.goto(s.url + "login")
        page.fill("input[name=token]", ADMIN_TOKEN)
        page.click("button[type=submit]")
        page.wait_for_url("**/dashboard")
        page.locator("#total").wait_for(state="attached")
        page.wait_for_function("() => document.getElementById('total').textContent === '0 pictures'")
        cookie = next(c for c in context.cookies() if c["name"] == server.SESSION_COOKIE)
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and ADMIN_TOKEN not in cookie["value"]
        page.goto(s.url)
        assert "Sorry" not in say(page, "/waifu pink blue").locator(".text").inner_text()
        page.locator(".msg.bot .files img").wait_for()
        context.close()
    finally:
        s.close()


def test_serving_beyond_loopback_without_a_token_is_refused():
    assert server.bind_refusal("127.0.0.1", "") is None and server.bind_refusal("localhost", "") is None
    assert server.bind_refusal("::1", "") is None and server.bind_refusal("0.0.0.0", ADMIN_TOKEN) is None
    for host in ("0.0.0.0", "192.168.1.10", "::", "example.org"):
        assert "MOEBOT_WEB_TOKEN" in server.bind_refusal(host, "")


def test_a_taken_port_is_a_clear_message(served):
    port = int(served.url.rstrip("/").rsplit(":", 1)[1])
    with pytest.raises(server.CannotServe, match=r"\[web\] port"):
        served.call(server.start(server.create_app(served.core, Path("runs")), WebConfig("127.0.0.1", port)))
