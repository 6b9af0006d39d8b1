/**
 * Wires the page: the state, the server (api.js), and the views. Views never call each other; the
 * two hover hooks (diagram box <-> heatmap) are connected here.
 *
 * For benchmarks: window.gatescope = {state, lastApplied: {seq, at}, lastDrawn()}.
 */

import { Live, listModels, traceBlob } from "./api.js";
import { Diagram } from "./diagram.js";
import { loadPlotly } from "./plotting.js";
import { Banner } from "./banner.js";
import { downloadSvg, saveBlob, slug } from "./export.js";
import { showToken } from "./format.js";
import { Heatmaps } from "./heatmaps.js";
import { Inspector } from "./inspector.js";
import { Picker, defaultUnit } from "./picker.js";
import { Scrubber } from "./scrubber.js";
import { State, parseHash } from "./state.js";
import { Steps } from "./steps.js";
import { Uploader } from "./uploader.js";

const $ = (id) => {
  const node = document.getElementById(id);
  if (!node) throw new Error(`Missing element '#${id}'`);
  return node;
};

/** The model shown when the URL names none (the server's default). */
const DEFAULT_MODEL = document.body.dataset.defaultModel || "code";

const state = new State();
const banner = new Banner($("banner"));
const gatescope = { state, lastApplied: { seq: 0, at: 0 }, lastDrawn: () => heatmaps.lastDrawn, views: {} };
window.gatescope = gatescope;

// ---- views

let diagram = null;
const heatmaps = new Heatmaps($("heatmaps"), state, {
  onGate: (gate) => diagram?.highlight(gate),
  onError: (msg) => banner.set("export", msg),
});
const picker = new Picker(
  { model: $("model"), description: $("description"), more: $("description-more"), examples: $("examples"), input: $("input") },
  state,
);
const scrubber = new Scrubber(
  { range: $("scrubber"), timestep: $("timestep"), play: $("play"), speed: $("speed"), unit: $("unit"), known: $("known"), layer: $("layer") },
  state,
);
const steps = new Steps($("steps"), state, {
  onGate: (gate) => {
    diagram?.highlight(gate);
    heatmaps.highlight(gate);
  },
});
const inspector = new Inspector(
  {
    title: $("inspector-title"),
    curves: $("curves"),
    curveTools: { png: $("curves-png"), svg: $("curves-svg") },
    gate: $("text-gate"),
    legend: $("text-legend"),
    text: $("coloured-text"),
    preds: $("preds"),
    predsBox: $("preds-box"),
    predsTitle: $("preds-title"),
  },
  state,
  { onError: (msg) => banner.set("export", msg) },
);

Object.assign(gatescope.views, { heatmaps, picker, scrubber, steps, inspector });

// ---- the chain diagram

const diagramRoot = $("diagram");
const ZEROS = new Map();
function zeros(H) {
  if (!ZEROS.has(H)) ZEROS.set(H, new Float32Array(H));
  return ZEROS.get(H);
}

/** What the diagram shows at t: exact lines of the unit, every unit's values at t, the C range. */
function diagramView() {
  const s = state;
  const T = s.T;
  const t = s.t;
  const H = s.card.hidden_size;
  const layer = s.trace.layers[s.layer] || {};
  const vectors = {};
  if (T) {
    for (const g of s.card.gates) vectors[g] = layer[g].row(t);
    vectors.h_prev = t > 0 ? layer.h.row(t - 1) : zeros(H);
    if (layer.c) vectors.c_prev = t > 0 ? layer.c.row(t - 1) : zeros(H);
  }
  // the token list is copied only when the trace changed (a scrub step stays cheap)
  if (tokensCache.version !== s.trace.version || tokensCache.T !== T) {
    tokensCache = { version: s.trace.version, T, tokens: s.trace.tokens.slice(0, T) };
  }
  const tokens = tokensCache.tokens;
  return { t, T, tokens, unit: s.unit, layer: s.layer, lines: s.currentLines() || {}, vectors, cellMax: s.trace.cellMax(s.layer) || 1 };
}

let tokensCache = { version: -1, T: -1, tokens: [] };
function diagramUpdate() {
  if (diagram && state.card) diagram.update(diagramView());
}

/** The diagram is built at once; it draws when the first card arrives. */
function loadDiagram() {
  diagram = new Diagram(diagramRoot, { onGate: (gate) => heatmaps.highlight(gate) });
  gatescope.views.diagram = diagram;
}

state.subscribe((changed) => {
  if (!diagram) return;
  if (changed.has("model")) diagram.setModel(state.card);
  if (["model", "trace", "focus", "t", "unit", "layer"].some((k) => changed.has(k))) diagramUpdate();
});

for (const format of ["png", "svg"]) {
  $(`diagram-${format}`).addEventListener("click", () => {
    const svg = diagramRoot.querySelector("svg");
    if (!svg) return;
    downloadSvg(svg, format, slug(`gatescope-${state.model}-diagram-t${state.t}-unit${state.unit}`)).catch((e) =>
      banner.set("export", `The diagram could not be saved: ${e.message}`),
    );
  });
}

// ---- the server

let lastError = 0;
/** Seq of the first edit sent for the model shown: older replies belong to another model's session. */
let modelSeq = 0;
/** Seq of the latest focus request. */
let focusSeq = 0;
const live = new Live({
  onEdit(reply) {
    if (reply.model !== state.model || reply.seq < modelSeq) return;
    if (!state.applyEdit(reply)) {
      live.reset(); // we lack the steps the reply builds on: start a fresh session
      return;
    }
    gatescope.lastApplied = { seq: reply.seq, at: performance.now() };
    // the reply's lines were for another unit (a focus request it overtook): ask again
    if (!state.currentLines() && state.T && reply.seq >= focusSeq) focusSeq = live.focus(state.layer, state.unit);
    if (reply.seq >= lastError) {
      banner.set("server", null);
      $("input").removeAttribute("aria-invalid");
    }
    showUnknown(reply);
  },
  onFocus(reply) {
    state.applyFocus(reply.focus);
  },
  onError(seq, message) {
    lastError = seq;
    const shown = state.T ? " The views show the last text the model could read." : "";
    banner.set("server", `Cannot trace this text with ${state.model}: ${message.replace(/\.?$/, ".")}${shown}`);
    $("input").setAttribute("aria-invalid", "true");
  },
  onStatus({ state: st, retryIn }) {
    if (st === "open") return banner.set("socket", null);
    const secs = Math.max(1, Math.round(retryIn / 1000));
    banner.set(
      "socket",
      st === "lost"
        ? `Lost the connection to the server. Reconnecting in ${secs} s…`
        : `The server's live connection cannot be reached. Retrying in ${secs} s…`,
      "warning",
    );
  },
});

function showUnknown(reply) {
  const unknown = state.trace.unknown || [];
  if (!unknown.length) return banner.set("unknown", null);
  const chars = [...new Set(unknown.map((t) => showToken(state.trace.tokens[t])))].slice(0, 5);
  banner.set(
    "unknown",
    `${chars.map((c) => `'${c}'`).join(", ")} ${chars.length > 1 ? "are" : "is"} not in ${reply.model}'s vocabulary (first at t = ${unknown[0]}): the model reads ${chars.length > 1 ? "them" : "it"} as an unknown token.`,
    "warning",
  );
}

state.subscribe((changed) => {
  if (changed.has("model") || changed.has("text")) {
    if (!state.text) {
      live.clear();
      banner.set("server", null);
      banner.set("unknown", null);
      return;
    }
    const seq = live.edit(state.model, state.text, { layer: state.layer, unit: state.unit });
    if (changed.has("model")) modelSeq = seq;
  } else if (changed.has("unit") || changed.has("layer")) {
    if (state.text) focusSeq = live.focus(state.layer, state.unit);
  }
});

// ---- downloads and sharing

async function downloadTrace(encoding) {
  if (!state.text) return banner.set("export", "There is no text to trace yet.", "info");
  try {
    const blob = await traceBlob(state.model, state.text, encoding);
    saveBlob(blob, `${slug(`gatescope-${state.model}-trace`)}.${encoding}`);
    banner.set("export", null);
  } catch (e) {
    banner.set("export", e.message);
  }
}
$("download-json").addEventListener("click", () => downloadTrace("json"));
$("download-csv").addEventListener("click", () => downloadTrace("csv"));
$("copy-link").addEventListener("click", async () => {
  history.replaceState(null, "", state.toHash());
  const status = $("copy-status");
  try {
    await navigator.clipboard.writeText(location.href);
    status.textContent = "Link copied";
  } catch {
    status.textContent = "Copy the address bar: it holds this view";
  }
  setTimeout(() => (status.textContent = ""), 2500);
});

// ---- start

function applyHash(cards) {
  const h = parseHash(location.hash);
  const card = cards.find((c) => c.id === h.model) || cards.find((c) => c.id === DEFAULT_MODEL) || cards[0];
  const start = defaultUnit(card);
  const unit = h.unit ?? null;
  const text = h.text ?? card.examples[0] ?? "";
  state.setModel(card.id, {
    unit: unit ?? start.unit,
    layer: h.layer ?? start.layer,
    text,
    t: h.t ?? null,
  });
  if (h.model && h.model !== card.id) banner.set("hash", `The link names a model this server does not have ('${h.model}'); showing ${card.id}.`, "warning");
}

/** Put a model list in the picker (vector models listed, disabled: the page cannot type vectors). */
function showCards(cards) {
  const usable = cards.filter((c) => c.input === "text");
  state.cards = usable.length ? usable : cards;
  picker.setCards(cards);
}

// ---- your own model: upload, then show it; remove it again

new Uploader(
  {
    open: $("upload-open"), dialog: $("upload"), form: $("upload-form"), file: $("upload-file"), vocab: $("upload-vocab"),
    name: $("upload-name"), status: $("upload-status"), progress: $("upload-progress"), submit: $("upload-submit"),
    cancel: $("upload-cancel"), remove: $("upload-remove"),
  },
  state,
  {
    onAdded: async (card) => {
      showCards(await listModels());
      if (card.input !== "text") {
        banner.set("upload", `Added '${card.id}', a model that reads vectors: trace it with POST /api/trace {"model": "${card.id}", "vectors": [...]}.`, "warning");
        return;
      }
      banner.set("upload", null);
      picker.choose(card.id);
    },
    onRemoved: async (id) => {
      showCards(await listModels());
      picker.choose(state.cards.find((c) => c.id === DEFAULT_MODEL)?.id || state.cards[0].id);
      banner.set("upload", `Removed '${id}'.`, "info");
    },
    onError: (msg) => banner.set("upload", msg),
  },
);

async function start() {
  live.connect(); // the handshake runs while the model list loads
  loadDiagram();
  let cards;
  try {
    cards = await listModels();
  } catch (e) {
    banner.set("models", `${e.message} Reload the page when the server is up.`);
    return;
  }
  if (!cards.length) return banner.set("models", "This server has no models to show.");
  showCards(cards);
  applyHash(state.cards);
  addEventListener("hashchange", () => {
    if (location.hash !== state.toHash()) applyHash(state.cards);
  });
}

// plotly.js (charts' frames, exports) comes after the first trace is on screen: see plotting.js
const unsubscribe = state.subscribe((changed) => {
  if (!changed.has("trace") || !state.T) return;
  unsubscribe();
  requestAnimationFrame(() => setTimeout(() => loadPlotly().catch((e) => banner.set("plotly", e.message)), 0));
});
setTimeout(() => loadPlotly().catch((e) => banner.set("plotly", e.message)), 2500);

start();
