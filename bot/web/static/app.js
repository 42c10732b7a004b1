// The playground: a chat with moebot's commands, vote buttons, and a sketch pad.
"use strict";

const log = document.getElementById("log");
const template = document.getElementById("message");

function newMessage(from, text) {
  const item = template.content.firstElementChild.cloneNode(true);
  item.classList.add(from);
  item.querySelector(".text").textContent = text;
  return item;
}

function addMessage(from, text) {
  const item = newMessage(from, text);
  log.appendChild(item);
  item.scrollIntoView({block: "end"});
  return item;
}

function showStatus(item, text) {
  let status = item.querySelector(".status");
  if (!status) status = item.insertBefore(el("p", "", "status"), item.firstChild);
  status.textContent = text;
}

// Review and tag buttons: each press goes to the core, which answers with a notice and what changes.
function showActions(item, rows) {
  const box = item.querySelector(".actions");
  box.replaceChildren();
  for (const row of rows || []) {
    const line = el("div", null, "row");
    for (const {label, id} of row) {
      const button = el("button", label, "action");
      button.type = "button";
      button.dataset.press = id;
      button.addEventListener("click", () => press(item, id));
      line.appendChild(button);
    }
    box.appendChild(line);
  }
}

async function press(item, id) {
  try {
    const result = await (await checked(await post("/api/press", {id}))).json();
    if (result.text !== null) item.querySelector(".text").textContent = result.text;
    if (result.rows !== null) showActions(item, result.rows);
    if (result.reply) showReply(addMessage("bot", ""), result.reply);
    item.querySelector(".actions").appendChild(el("span", result.notice, "notice"));
  } catch (error) {
    item.querySelector(".actions").appendChild(el("span", error.message, "notice error"));
  }
}

// Vote buttons say in words what they are: without an emoji font 👍 and 👎 are two identical boxes.
const VOTES = [{emoji: "👍", word: "Good", count: "up"}, {emoji: "👎", word: "Bad", count: "down"}];

function showButtons(container, buttons) {
  container.replaceChildren();
  if (!buttons) return;
  for (const [i, {id}] of buttons.labelled.entries()) {
    const {emoji, word, count} = VOTES[i];
    const n = buttons[count];
    const button = el("button", `${emoji} ${word} ${n}`, "vote");
    button.setAttribute("aria-label", `${word}: ${n} vote${n === 1 ? "" : "s"}`);
    button.type = "button";
    button.dataset.vote = id;
    button.addEventListener("click", () => vote(container, id));
    container.appendChild(button);
  }
}

async function vote(container, id) {
  try {
    const result = await (await checked(await post("/api/vote", {id}))).json();
    showButtons(container, result.buttons);
    container.appendChild(el("span", result.notice, "notice"));
  } catch (error) {
    container.appendChild(el("span", error.message, "notice error"));
  }
}

function showReply(item, reply, scroll = true) {
  item.querySelector(".status")?.remove();
  item.querySelector(".text").textContent = reply.text;
  item.classList.toggle("refusal", reply.refusal);
  const files = item.querySelector(".files");
  for (const file of reply.files) {
    const img = el("img");
    img.src = file.url;
    img.alt = file.name;
    files.appendChild(img);
  }
  showButtons(item.querySelector(".votes"), reply.buttons);
  showActions(item, reply.actions);
  if (scroll) item.scrollIntoView({block: "end"});
  for (const next of reply.more) showReply(addMessage("bot", ""), next);
}

// Read the server's JSON lines (drawing, queued, reply) as they come.
async function follow(response, item) {
  await checked(response);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    buffer += decoder.decode(value || new Uint8Array(), {stream: !done});
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const event = JSON.parse(buffer.slice(0, newline));
      buffer = buffer.slice(newline + 1);
      if (event.type === "drawing") showStatus(item, "drawing…");
      else if (event.type === "queued") showStatus(item, `⏳ You're number ${event.position} in the queue — your picture is coming.`);
      else if (event.type === "reply") showReply(item, event);
    }
    if (done) return;
  }
}

async function ask(request) {
  const item = addMessage("bot", "");
  try {
    await follow(await request, item);
  } catch (error) {
    showReply(item, {text: `Could not reach moebot: ${error.message}`, refusal: true, files: [], buttons: null});
  }
}

function say(text) {
  text = text.trim();
  if (!text) return;
  addMessage("me", text);
  ask(post("/api/command", {text}));
}

document.getElementById("say").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("text");
  say(input.value);
  input.value = "";
});
for (const chip of document.querySelectorAll("[data-say]")) {
  chip.addEventListener("click", () => say(chip.dataset.say));
}

// The input suggests every command the bot has, as its registry lists them.
async function showCommands() {
  const {commands} = await (await checked(await fetch("/api/commands"))).json();
  const list = document.getElementById("commands");
  for (const command of commands) {
    const option = document.createElement("option");
    option.value = `/${command.name}`;
    option.label = `${command.usage} — ${command.description}`;
    list.append(option);
  }
}
showCommands();

// A reloaded page shows the latest pictures drawn here again, above anything new, with working vote buttons.
async function showHistory() {
  try {
    const {messages} = await (await checked(await fetch("/api/history"))).json();
    const first = log.firstChild;
    if (messages.length) log.insertBefore(el("li", "Earlier pictures", "divider"), first);
    for (const message of messages) showReply(log.insertBefore(newMessage("earlier", ""), first), message, false);
  } finally {
    log.dataset.history = "shown";
  }
}
showHistory();

// --- sketch pad: pointer events cover mouse, pen and finger alike ---
const pad = document.getElementById("pad");
const ink = pad.getContext("2d");
const strokes = [];

function redraw() {
  ink.fillStyle = "#fff";
  ink.fillRect(0, 0, pad.width, pad.height);
  ink.strokeStyle = "#000";
  ink.lineWidth = 4;
  ink.lineCap = ink.lineJoin = "round";
  for (const stroke of strokes) {
    ink.beginPath();
    ink.moveTo(stroke[0].x, stroke[0].y);
    for (const p of stroke.slice(1)) ink.lineTo(p.x, p.y);
    if (stroke.length === 1) ink.lineTo(stroke[0].x + 0.1, stroke[0].y);
    ink.stroke();
  }
}

function point(event) {
  const box = pad.getBoundingClientRect();
  return {x: (event.clientX - box.left) * pad.width / box.width, y: (event.clientY - box.top) * pad.height / box.height};
}

pad.addEventListener("pointerdown", (event) => {
  pad.setPointerCapture(event.pointerId);
  strokes.push([point(event)]);
  redraw();
});
pad.addEventListener("pointermove", (event) => {
  if (!pad.hasPointerCapture(event.pointerId)) return;
  strokes[strokes.length - 1].push(point(event));
  redraw();
});
document.getElementById("undo").addEventListener("click", () => { strokes.pop(); redraw(); });
document.getElementById("clear").addEventListener("click", () => { strokes.length = 0; redraw(); });
redraw();

// A picture goes to the server as an upload, the drawn one as PNG: the same checks as a chat upload.
function sendPicture(blob, name, command) {
  const me = addMessage("me", command);
  const preview = el("img");
  preview.src = URL.createObjectURL(blob);
  preview.alt = name;
  me.querySelector(".files").appendChild(preview);
  const form = new FormData();
  form.append("text", command);  // before the image: the server reads the command, then the file
  form.append("image", blob, name);
  ask(fetch("/api/upload", {method: "POST", headers: {"X-CSRF-Token": CSRF}, body: form}));
}

const words = () => document.getElementById("words").value.trim();
document.getElementById("convert").addEventListener("click", () => {
  if (!strokes.length) {
    addMessage("bot", "Draw something on the pad first (mouse, pen or finger).").classList.add("refusal");
    return;
  }
  pad.toBlob((blob) => sendPicture(blob, "sketch.png", `/sketch ${words()}`.trim()), "image/png");
});
const sendFile = (file) => sendPicture(file, file.name, `${document.getElementById("upload-as").value} ${words()}`.trim());
const upload = document.getElementById("upload");
upload.addEventListener("change", () => {
  if (upload.files.length) sendFile(upload.files[0]);
  upload.value = "";
});
const drop = document.getElementById("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  if (event.dataTransfer.files[0]) sendFile(event.dataTransfer.files[0]);
});
