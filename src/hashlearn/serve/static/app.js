// The hashlearn search page: pick or drop an image (or click an indexed one), see its code and
// its nearest items. Talks only to this service's API; no external scripts.
"use strict";

const state = { stats: null, lastQuery: null, preview: null, sequence: 0 };
const $ = (selector) => document.querySelector(selector);

async function api(path, options) {
  const response = await fetch(path, options);
  let body = null;
  try {
    body = await response.json();
  } catch (err) {
    body = null;
  }
  if (!response.ok) {
    throw new Error((body && body.error) || `${response.status} ${response.statusText}`);
  }
  return body;
}

function setStatus(text, isError) {
  const status = $("#status");
  status.textContent = text;
  status.classList.toggle("error", Boolean(isError));
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// Pictures much smaller than their box (digits) are enlarged with sharp pixels, photos smoothly.
function sharpenWhenTiny(img) {
  img.addEventListener("load", () => {
    img.classList.toggle("pixelated", img.naturalWidth > 0 && img.naturalWidth <= 48);
  });
}

// The small picture of an item: its thumbnail (at most 256 px, made and cached by the service).
function thumbnailUrl(id) {
  return `/items/${encodeURIComponent(id)}/thumbnail`;
}

function itemImage(id, hasImage) {
  if (!hasImage) return element("div", "no-image", "no image");
  const img = element("img");
  img.src = thumbnailUrl(id);
  img.alt = `item ${id}`;
  img.loading = "lazy";
  sharpenWhenTiny(img);
  return img;
}

// Bits of a hex code, bit 0 first (bit i is bit i % 8 of byte i / 8, least significant first).
function hexToBits(hex, nBits) {
  let bits = "";
  for (let i = 0; i < nBits; i++) {
    const byte = parseInt(hex.substr(2 * Math.floor(i / 8), 2), 16);
    bits += (byte >> (i % 8)) & 1;
    if (i % 8 === 7 && i + 1 < nBits) bits += " ";
  }
  return bits;
}

function searchParameters() {
  const mode = document.querySelector("input[name=mode]:checked").value;
  if (mode === "radius") return `radius=${encodeURIComponent($("#radius-input").value)}`;
  return `k=${encodeURIComponent($("#k-input").value || "10")}`;
}

function queryLabel() {
  const value = $("#query-label").value;
  return value === "" ? null : Number(value);
}

async function runSearch(query) {
  const sequence = ++state.sequence;
  state.lastQuery = query;
  setStatus("searching…");
  let options;
  if (query.file) {
    const form = new FormData();
    form.append("image", query.file);
    options = { method: "POST", body: form };
  } else {
    options = {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(query.json),
    };
  }
  try {
    const result = await api(`/search?${searchParameters()}`, options);
    if (sequence !== state.sequence) return; // a newer search was started meanwhile
    if (query.file) state.lastQuery = { json: { code_hex: result.query_code } };
    if (result.query_label !== null && result.query_label !== undefined) {
      $("#query-label").value = String(result.query_label);
    }
    render(result);
    setStatus("");
  } catch (err) {
    if (sequence === state.sequence) setStatus(err.message, true);
  }
}

// The file name of an item encoded from a folder (hashlearn encode --images), or null.
function filePath(item) {
  const path = item.metadata && item.metadata.path;
  return typeof path === "string" ? path : null;
}

function hasLabels() {
  return Boolean(state.stats && state.stats.has_labels);
}

function render(result) {
  $("#query").hidden = false;
  const preview = $("#query-image");
  preview.hidden = !state.preview;
  if (state.preview && preview.getAttribute("src") !== state.preview) {
    preview.classList.remove("pixelated");
    preview.src = state.preview;
  }
  else preview.removeAttribute("src");
  $("#query-code").textContent = result.query_code;
  $("#query-bits").textContent = hexToBits(result.query_code, result.n_bits);

  const wanted = queryLabel();
  const grid = $("#results");
  grid.replaceChildren();
  let matches = 0;
  for (const hit of result.hits) {
    const card = element("div", "result");
    card.dataset.id = hit.id;
    if (wanted !== null && hit.label !== null) {
      const match = hit.label === wanted;
      card.classList.add(match ? "match" : "mismatch");
      if (match) matches += 1;
    }
    card.append(itemImage(hit.id, hit.has_image));
    card.append(element("div", "distance", `distance ${hit.distance}`));
    if (hasLabels()) {
      card.append(element("div", "label", hit.label === null ? "no label" : `label ${hit.label}`));
    }
    const path = filePath(hit);
    const name = element("div", "name muted", path ? `#${hit.id} ${path}` : `#${hit.id}`);
    name.title = path ? `item ${hit.id}: ${path}` : `item ${hit.id}`;
    card.append(name);
    grid.append(card);
  }
  $("#results-title").hidden = false;
  const how = result.radius !== null && result.radius !== undefined
    ? `within radius ${result.radius}` : `top ${result.k}`;
  let summary = `${result.hits.length} results (${how})`;
  if (result.truncated) summary += `, cut from ${result.n_found}`;
  if (wanted !== null) summary += `; ${matches} share the query's label ${wanted}`;
  $("#summary").textContent = summary;
}

function searchFile(file) {
  if (!file) return;
  if (state.preview && state.preview.startsWith("blob:")) URL.revokeObjectURL(state.preview);
  state.preview = URL.createObjectURL(file);
  $("#query-label").value = "";
  runSearch({ file });
}

function searchItem(id) {
  state.preview = thumbnailUrl(id);
  runSearch({ json: { id } });
}

async function browse() {
  if (!state.stats || state.stats.items === 0) return;
  const seed = Math.floor(Math.random() * 1e9);
  try {
    const page = await api(`/items?limit=24&sample_seed=${seed}`);
    const grid = $("#browse");
    grid.replaceChildren();
    for (const item of page.items) {
      const button = element("button", "thumb");
      button.type = "button";
      const label = hasLabels() && item.label !== null ? `, label ${item.label}` : "";
      button.title = `item ${item.id}` + label
        + (filePath(item) ? `, ${filePath(item)}` : "");
      button.append(itemImage(item.id, item.has_image));
      button.addEventListener("click", () => searchItem(item.id));
      grid.append(button);
    }
  } catch (err) {
    setStatus(err.message, true);
  }
}

async function loadStats() {
  const stats = await api("/stats");
  state.stats = stats;
  $("#stats").textContent =
    `${stats.items.toLocaleString()} items · ${stats.method} · ${stats.bits} bits · ` +
    `${stats.index_type}` + (stats.image_shape ? ` · images ${stats.image_shape.join("×")}` : "");
  const radius = $("#radius-input");
  radius.max = String(Math.min(stats.bits, stats.limits.max_radius));
  $("#k-input").max = String(stats.limits.max_k);
  $("#label-control").hidden = !stats.has_labels;
  const select = $("#query-label");
  for (const label of stats.labels) {
    const option = element("option", "", String(label));
    option.value = String(label);
    select.append(option);
  }
}

function rerun() {
  if (state.lastQuery) runSearch(state.lastQuery);
}

function setUp() {
  sharpenWhenTiny($("#query-image"));
  const zone = $("#drop-zone");
  $("#file-input").addEventListener("change", (event) => searchFile(event.target.files[0]));
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    searchFile(event.dataTransfer.files[0]);
  });
  const radius = $("#radius-input");
  radius.addEventListener("input", () => {
    $("#radius-value").textContent = radius.value;
    document.querySelector("input[name=mode][value=radius]").checked = true;
  });
  radius.addEventListener("change", rerun);
  $("#k-input").addEventListener("change", () => {
    document.querySelector("input[name=mode][value=k]").checked = true;
    rerun();
  });
  for (const input of document.querySelectorAll("input[name=mode]")) {
    input.addEventListener("change", rerun);
  }
  $("#query-label").addEventListener("change", rerun);
  $("#shuffle").addEventListener("click", browse);
  loadStats()
    .then(browse)
    .catch((err) => setStatus(err.message, true));
}

document.addEventListener("DOMContentLoaded", setUp);
