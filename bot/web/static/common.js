// Shared by the playground and the dashboard: requests that carry the page's CSRF token, and safe DOM building.
"use strict";

const CSRF = document.querySelector('meta[name="csrf-token"]').content;

// POST JSON with the token this page was served with; the server refuses changes without it.
function post(url, body) {
  return fetch(url, {
    method: "POST",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": CSRF},
    body: JSON.stringify(body),
  });
}

// An element with text set through textContent: user-supplied text is never parsed as HTML.
function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

// A reply's error text, or the response when it is fine.
async function checked(response) {
  if (!response.ok) throw new Error(await response.text() || response.statusText);
  return response;
}
