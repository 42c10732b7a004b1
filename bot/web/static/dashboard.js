// The admin dashboard: one loader per tab; a new page is one more tab, section and loader.
"use strict";

async function getJSON(url) {
  return (await checked(await fetch(url, {headers: {"Accept": "application/json"}}))).json();
}

function table(node, head, rows) {
  node.replaceChildren();
  const top = node.insertRow();
  for (const h of head) top.appendChild(el("th", h));
  for (const row of rows) {
    const tr = node.insertRow();
    for (const cell of row.cells) {
      const td = tr.insertCell();
      if (cell instanceof Node) td.appendChild(cell); else td.textContent = cell ?? "";
    }
    if (row.className) tr.className = row.className;
  }
}

// A pager under a list: "page N of M", its buttons step and reload.
function pager(id, data, go) {
  const box = document.getElementById(id);
  box.querySelector("span").textContent = `page ${data.page} of ${data.pages}`;
  for (const button of box.querySelectorAll("button")) {
    const to = data.page + Number(button.dataset.step);
    button.disabled = to < 1 || to > data.pages;
    button.onclick = () => go(to);
  }
}

// --- gallery ---
const filters = document.getElementById("filters");
let page = 1;

function fillOptions(select, values) {
  const chosen = select.value;
  while (select.options.length > 1) select.remove(1);
  for (const v of values) select.add(new Option(v, v));
  select.value = values.includes(chosen) ? chosen : "";
}

async function loadGallery() {
  const query = new URLSearchParams(new FormData(filters));
  query.set("page", page);
  const data = await getJSON(`/api/gallery?${query}`);
  fillOptions(filters.elements.platform, data.platforms);
  fillOptions(filters.elements.kind, data.kinds);
  const cards = document.getElementById("pictures");
  cards.replaceChildren();
  for (const p of data.items) {
    const card = el("figure", null, "card");
    card.dataset.picture = p.id;
    const img = el("img");
    img.src = p.url;
    img.alt = p.tags;
    img.loading = "lazy";
    card.append(img, el("div", p.tags, "tags"),
                el("div", `👍 ${p.up} 👎 ${p.down} · ${p.kind} · ${p.platform}${p.state ? ` · ${p.state}` : ""}`, "meta"),
                el("div", [`#${p.id}`, p.model_version, p.created_at.slice(0, 16).replace("T", " ")]
                  .filter(Boolean).join(" · "), "meta"));
    cards.appendChild(card);
  }
  document.getElementById("total").textContent = `${data.total} pictures`;
  pager("gallery-pager", data, (to) => { page = to; loadGallery(); });
}
filters.addEventListener("submit", (event) => { event.preventDefault(); page = 1; loadGallery(); });

// --- curation: the pending, curated and rejected queues; approve / reject / re-tag ---
let queue = "pending";
let queuePage = 1;

function colourSelect(names, chosen, label) {
  const select = el("select");
  select.setAttribute("aria-label", label);
  names.forEach((name, i) => select.add(new Option(`${name} ${label}`, i)));
  select.value = chosen ?? 0;
  return select;
}

async function curate(id, body) {
  const notice = document.getElementById("curation-notice");
  try {
    const item = await (await checked(await post(`/api/queue/${id}`, body))).json();
    notice.textContent = `Item #${item.id}: ${item.tags}, ${item.status}.`;
  } catch (error) {
    notice.textContent = error.message;
  }
  loadCuration();
}

function itemCard(item, data) {
  const card = el("figure", null, "card");
  card.dataset.item = item.id;
  const img = el("img");
  img.src = item.url;
  img.alt = item.tags;
  card.append(img, el("div", item.tags, "tags"),
              el("div", `#${item.id} · 👍 ${item.up} 👎 ${item.down} · from ${item.source}`, "meta"));
  const tools = el("div", null, "tools");
  if (item.status === "pending") {
    for (const [label, action] of [["✅ approve", "approve"], ["❌ reject", "reject"]]) {
      const button = el("button", label);
      button.type = "button";
      button.dataset.action = action;
      button.addEventListener("click", () => curate(item.id, {action}));
      tools.appendChild(button);
    }
  }
  const hair = colourSelect(data.hair_colors, item.hair, "hair");
  const eye = colourSelect(data.eye_colors, item.eye, "eyes");
  const retag = el("button", "🏷 re-tag");
  retag.type = "button";
  retag.dataset.action = "retag";
  retag.addEventListener("click", () => curate(item.id, {action: "retag", hair: Number(hair.value), eye: Number(eye.value)}));
  tools.append(hair, eye, retag);
  card.appendChild(tools);
  return card;
}

async function loadCuration() {
  const data = await getJSON(`/api/queue?status=${queue}&page=${queuePage}`);
  for (const button of document.querySelectorAll("[data-queue]")) {
    button.setAttribute("aria-selected", String(button.dataset.queue === queue));
    button.querySelector("span").textContent = `(${data.sizes[button.dataset.queue]})`;
  }
  const items = document.getElementById("items");
  items.replaceChildren(...data.items.map((item) => itemCard(item, data)));
  if (!data.items.length) items.appendChild(el("p", `Nothing is ${queue}.`));
  pager("curation-pager", data, (to) => { queuePage = to; loadCuration(); });
}
for (const button of document.querySelectorAll("[data-queue]")) {
  button.addEventListener("click", () => { queue = button.dataset.queue; queuePage = 1; loadCuration(); });
}

// --- training runs: loss curve and the sample grids over time, on a slider ---
function runCard(run) {
  const card = el("article", null, "run");
  card.dataset.run = run.name;
  // the latest stats line as it is: every model logs its own losses and accuracies
  const facts = Object.entries(run.last).filter(([key]) => key !== "time").map(([key, value]) => `${key} ${value}`);
  card.append(el("h2", run.name), el("p", facts.join(" · ") || "no stats logged yet", "meta"));
  const pics = el("div", null, "pics");
  if (run.loss) {
    const loss = el("img");
    loss.src = `/runs/${encodeURIComponent(run.name)}/loss.png`;
    loss.alt = `loss curves of ${run.name}`;
    pics.appendChild(loss);
  }
  if (run.grids.length) {
    const box = el("div");
    const grid = el("img");
    grid.alt = `samples of ${run.name}`;
    const label = el("p", "", "meta");
    const slider = el("input");
    slider.type = "range";
    slider.min = 0;
    slider.max = run.grids.length - 1;
    slider.value = run.grids.length - 1;
    slider.setAttribute("aria-label", "sample grid step");
    const show = () => {
      const name = run.grids[slider.value];
      grid.src = `/runs/${encodeURIComponent(run.name)}/${name}`;
      label.textContent = `samples at step ${Number(name.slice(5, 11))}`;
    };
    slider.addEventListener("input", show);
    show();
    box.append(grid, slider, label);
    pics.appendChild(box);
  }
  card.appendChild(pics);
  return card;
}

async function loadRuns() {
  const data = await getJSON("/api/runs");
  const section = document.getElementById("runs");
  section.replaceChildren(...data.runs.map(runCard));
  if (!data.runs.length) section.appendChild(el("p", "No training runs yet: `moebot train acgan --run runs/NAME`."));
}

// --- models: versions side by side, promote / roll back ---
async function promote(id) {
  const notice = document.getElementById("model-notice");
  try {
    const result = await (await checked(await post("/api/models/promote", {model: id}))).json();
    notice.textContent = `Active ${result.kind} model is now ${result.active}: this bot draws with it now, others within seconds.`;
  } catch (error) {
    notice.textContent = error.message;
  }
  setTimeout(loadModels, 2500);
  loadModels();
}

function modelRows(models, verb) {
  return models.map((m) => {
    const button = el("button", m.active ? "active" : verb);
    button.type = "button";
    button.disabled = m.active;
    button.dataset.model = m.id;
    button.addEventListener("click", () => promote(m.id));
    return {cells: [m.version, m.kind, m.source, m.step, m.kimg, m.train_minutes, m.images, m.config?.g_ch, m.size_mb, button],
            className: m.active ? "active" : ""};
  });
}

async function registryAction(body) {
  const notice = document.getElementById("model-notice");
  try {
    notice.textContent = (await (await checked(await post("/api/registry", body))).json()).message;
  } catch (error) {
    notice.textContent = error.message;
  }
  setTimeout(loadModels, 2500);
  loadModels();
}

// The gate's figures of a version beside its parent's on the same faces: "name: parent → this".
function figures(model) {
  const names = [...new Set([...Object.keys(model.parent_metrics), ...Object.keys(model.metrics)])];
  const shown = (v) => (typeof v === "number" ? Number(v.toPrecision(3)) : v ?? "–");
  return names.map((n) => `${n}: ${shown(model.parent_metrics[n])} → ${shown(model.metrics[n])}`).join("\n");
}

function registryRow(model) {
  let grid = "";
  if (model.grid) {
    grid = el("img", null, "thumb");
    grid.src = model.grid;
    grid.alt = `${model.version}: its parent's faces | its own`;
  }
  let action = "";
  if (model.state !== "active" && model.weights) {
    action = el("button", "serve this");
    action.type = "button";
    action.dataset.version = model.version;
    action.addEventListener("click", () => registryAction({action: "rollback", version: model.version}));
  }
  return {cells: [model.version, model.state, model.parent, el("span", figures(model), "gate-figures"), model.reason,
                  model.updated_at.slice(0, 16).replace("T", " "), grid, action],
          className: model.state === "active" ? "active" : ""};
}

async function loadModels() {
  const data = await getJSON("/api/models");
  const head = ["version", "kind", "from", "step", "kimg", "minutes", "training images", "G width", "MB", ""];
  document.getElementById("serving").textContent = Object.entries(data.serving).map(([kind, v]) => `${v} (${kind})`).join(" · ");
  table(document.getElementById("versions"), head, modelRows(data.versions, "roll back to this"));
  table(document.getElementById("candidates"), head, modelRows(data.candidates, "promote"));
  const reg = await getJSON("/api/registry");
  document.getElementById("retrain").hidden = !reg.enabled;
  document.getElementById("registry-state").textContent = !reg.enabled ? "Retraining is not set up in this moebot."
    : reg.running ? `Run ${reg.running} is training now.` : "No run is going.";
  table(document.getElementById("registry"), ["version", "state", "parent", "figures (parent → this)", "why",
                                              "updated", "before | after", ""], reg.models.map(registryRow));
}
document.getElementById("retrain").addEventListener("click", () => registryAction({action: "retrain"}));

// --- generator service: live figures, refreshed every 2 s while the tab is open ---
async function loadGenerator() {
  const m = await getJSON("/api/metrics");
  const figures = [["queue", `${m.queue_requests} requests`, `${m.queue_rows} faces waiting`],
                   ["drawing now", m.in_flight, "faces in the batch"],
                   ["throughput", m.images_per_s_1m.toFixed(1), "faces/s over 1 min"],
                   ["latency p50", `${m.latency_p50_ms.toFixed(0)} ms`, `p90 ${m.latency_p90_ms.toFixed(0)} · p99 ${m.latency_p99_ms.toFixed(0)} ms`],
                   ["mean batch", m.mean_batch.toFixed(1), `of at most ${m.max_batch}`],
                   ["requests", m.requests, `${m.failed} failed · ${m.rejected} turned away`],
                   ["faces drawn", m.images, `model ${m.version}`]];
  document.getElementById("figures").replaceChildren(...figures.map(([name, value, note]) => {
    const box = el("div", null, "figure");
    box.dataset.figure = name;
    box.append(el("span", name, "meta"), el("b", value), el("span", note, "meta"));
    return box;
  }));
  table(document.getElementById("batches"), ["faces in the batch", "batches"],
        m.batch_sizes.map(([size, n]) => ({cells: [size, n]})));
}

// --- tabs ---
const loaders = {gallery: loadGallery, curation: loadCuration, runs: loadRuns, models: loadModels,
                 generator: loadGenerator};
let timer = null;

function openTab(tab) {
  if (!(tab in loaders)) tab = "gallery";
  for (const button of document.querySelectorAll("[data-tab]")) {
    button.setAttribute("aria-selected", String(button.dataset.tab === tab));
  }
  for (const name of Object.keys(loaders)) document.getElementById(name).hidden = name !== tab;
  clearInterval(timer);
  loaders[tab]();
  if (tab === "generator") timer = setInterval(loadGenerator, 2000);
}
for (const button of document.querySelectorAll("[data-tab]")) {
  button.addEventListener("click", () => { location.hash = button.dataset.tab; });
}
window.addEventListener("hashchange", () => openTab(location.hash.slice(1)));
openTab(location.hash.slice(1));
