/**
 * Wires the page: the state, the server (api.js) and the views. Views never call each other: each
 * subscribes to the state; the views a saved page shares, with their hover hooks (diagram, step cards,
 * heatmaps), are built by views.js; the live-only views and the banner's messages are connected here.
 *
 * For tests and benchmarks: window.gatescope = {state, lastDrawn()} (lastDrawn: the heatmaps' last frame).
 */

import { LiveSync, listModels, readSeries } from "./api.js";
import { Banner } from "./banner.js";
import { Dashboard } from "./dashboard.js";
import { Indexer } from "./indexer.js";
import { MatchView } from "./match.js";
import { OrderControl } from "./order.js";
import { Picker } from "./picker.js";
import { loadPlotlyAfterFirstTrace } from "./plotting.js";
import { ProbeView } from "./probe.js";
import { AttributeView } from "./attribute.js";
import { CompareView } from "./compare.js";
import { InterveneView } from "./intervene.js";
import { SaturationView } from "./saturation.js";
import { SeriesView } from "./series.js";
import { SideRun } from "./side.js";
import { Share } from "./share.js";
import { State } from "./state.js";
import { Story } from "./story.js";
import { Uploader } from "./uploader.js";
import { mountViews } from "./views.js";

const $ = (id) => {
  const node = document.getElementById(id);
  if (!node) throw new Error(`Missing element '#${id}'`);
  return node;
};

/** The model shown when the URL names none (the server's default). */
const DEFAULT_MODEL = document.body.dataset.defaultModel || "code";

const state = new State();
const banner = new Banner($("banner"), state);
/** Messages of one kind (a banner key), as a hook. */
const say = (key) => (text, level) => banner.set(key, text, level);

// ---- views

const { heatmaps, diagram } = mountViews(state, $, say, { hold: true });
const picker = new Picker(
  {
    model: $("model"), description: $("description"), more: $("description-more"), examples: $("examples"), input: $("input"),
    label: $("input-label"), file: $("series-file"), fileBox: $("series-file-box"),
    ask: { root: $("switch-ask"), text: $("switch-ask-text"), replace: $("switch-replace"), stay: $("switch-stay") },
  },
  state,
  {
    // the server reads the file (CSV or .npy) into the CSV text the box then holds and the socket traces
    async onFile(file) {
      try {
        const read = await readSeries(file);
        banner.set("series", null);
        state.setText(read.csv, { follow: true });
      } catch (e) {
        banner.set("series", `Cannot read ${file.name}: ${e.message}`);
      }
    },
  },
);
new SeriesView({ root: $("series"), plot: $("series-plot"), note: $("series-note") }, state);
new Story(
  {
    root: $("story"), start: $("story-start"), count: $("story-count"), title: $("story-title"), words: $("story-words"),
    prev: $("story-prev"), next: $("story-next"), close: $("story-close"), restore: $("story-restore"), input: $("input"),
  },
  state,
);
// what the story lights (state.highlight), in the diagram and the heatmaps (after they rebuild for a new model)
state.subscribe((changed) => {
  if (!changed.has("highlight") && !changed.has("model")) return;
  diagram.highlight(state.highlight);
  heatmaps.highlight(state.highlight);
});
new Dashboard({ root: $("dashboard-body"), gate: $("dashboard-gate"), status: $("dashboard-status") }, state);
new OrderControl({ select: $("row-order"), note: $("row-order-note") }, state, { onError: say("order") });
new MatchView(
  {
    root: $("match"), form: $("match-form"), start: $("match-start"), stop: $("match-stop"), from: $("match-from"), to: $("match-to"),
    gate: $("match-gate"), threshold: $("match-threshold"), search: $("match-search"), find: $("match-find"), span: $("match-span"),
    status: $("match-status"), units: $("match-units"), results: $("match-results"),
  },
  state,
);
new SaturationView({ root: $("saturation"), plots: $("saturation-plots"), source: $("saturation-source"), note: $("saturation-note") }, state);
new InterveneView(
  {
    root: $("intervene"), form: $("intervene-form"), op: $("intervene-op"), gate: $("intervene-gate"), value: $("intervene-value"),
    source: $("intervene-source"), from: $("intervene-from"), to: $("intervene-to"), fromT: $("intervene-from-t"),
    toT: $("intervene-to-t"), add: $("intervene-add"), clear: $("intervene-clear"), list: $("intervene-list"),
    status: $("intervene-status"), at: $("intervene-at"), curve: $("intervene-curve"), change: $("intervene-change"),
  },
  state,
);
new AttributeView(
  { root: $("attribute"), method: $("attribute-method"), status: $("attribute-status"), text: $("attribute-text"), curve: $("attribute-curve") },
  state,
);
new CompareView(
  {
    root: $("compare"), model: $("compare-model"), text: $("compare-text"), match: $("compare-match"), note: $("compare-note"),
    at: $("compare-at"), logp: $("compare-logp"), diff: $("compare-diff"), pairs: $("compare-pairs"),
  },
  state,
);
const side = new SideRun(
  {
    row: document.querySelector(".cell-row"), diagramBox: $("side-diagram-box"), diagram: $("side-diagram"), heatmapsBox: $("side-heatmaps-box"),
    heatmaps: $("side-heatmaps"), title: $("side-title"), heatTitle: $("side-heat-title"), titleA: $("side-title-a"),
    heatTitleA: $("side-heat-title-a"),
  },
  state,
);
new Share({ copy: $("copy-link"), status: $("copy-status"), json: $("download-json"), csv: $("download-csv"), page: $("save-page") }, state, {
  onMessage: say("export"),
});
new Uploader(
  {
    open: $("upload-open"), dialog: $("upload"), form: $("upload-form"), file: $("upload-file"), vocab: $("upload-vocab"),
    name: $("upload-name"), status: $("upload-status"), progress: $("upload-progress"), submit: $("upload-submit"),
    cancel: $("upload-cancel"), remove: $("upload-remove"), moduleRow: $("upload-module-row"), module: $("upload-module"),
    head: $("upload-head"), headAt: $("upload-head-at"), labels: $("upload-labels"),
  },
  state,
  { defaultModel: DEFAULT_MODEL, onMessage: say("upload"), choose: (id) => picker.choose(id) },
);
new Indexer(
  {
    open: $("index-open"), dialog: $("indexer"), form: $("indexer-form"), title: $("indexer-title"), file: $("indexer-file"),
    per: $("indexer-per-line"), carry: $("indexer-carry"), progress: $("indexer-progress"), status: $("indexer-status"),
    submit: $("indexer-submit"), cancel: $("indexer-cancel"), line: $("index-status"),
  },
  state,
  { onMessage: say("index") },
);
new ProbeView(
  {
    root: $("probe"), feature: $("probe-feature"), regex: $("probe-regex"), regexBox: $("probe-regex-box"), labels: $("probe-labels"),
    labelsBox: $("probe-labels-box"), over: $("probe-over"), linear: $("probe-linear"), run: $("probe-run"), save: $("probe-save"),
    status: $("probe-status"), ranking: $("probe-ranking"), plot: $("probe-plot"), linearText: $("probe-linear-text"),
  },
  state,
);
window.gatescope = { state, side, lastDrawn: () => heatmaps.lastDrawn };

// ---- the server

const BACK_SAID_MS = 4000; // how long "Connected to the server again." stays
let socketCountdown = 0; // the reconnect banner's one-second countdown
let socketBack = 0;
const live = new LiveSync(state, {
  onTraced() {
    banner.set("server", null);
    if (state.interventions.length) banner.set("hold", null); // a hold that runs: the refusal is old news
    picker.markInvalid(false);
  },
  onError(message) {
    if (state.interventions.length && /\binterventions?\b/.test(message)) {
      // what the page holds (a link's hold=, say) cannot be run: the plain run, and why
      banner.set("hold", `Nothing is held: ${message.replace(/\.?$/, ".")} The views show the plain run.`, "warning");
      state.setInterventions([]);
      return;
    }
    const shown = state.T ? " The views show the last text the model could read." : "";
    banner.set("server", `Cannot trace this text with ${state.model}: ${message.replace(/\.?$/, ".")}${shown}`);
    picker.markInvalid(true);
  },
  onCleared: () => {
    banner.set("server", null);
  },
  onStatus({ state: st, retryIn }) {
    clearInterval(socketCountdown);
    clearTimeout(socketBack);
    if (st === "open") {
      if (banner.messages.get("socket")?.level !== "warning") return banner.set("socket", null);
      banner.set("socket", "Connected to the server again.", "info"); // said, then gone
      socketBack = setTimeout(() => banner.set("socket", null), BACK_SAID_MS);
      return;
    }
    const until = performance.now() + retryIn;
    const say = () => {
      const secs = Math.ceil((until - performance.now()) / 1000);
      const when = secs > 0 ? `in ${secs} s…` : "now…";
      banner.set(
        "socket",
        st === "lost" ? `Lost the connection to the server. Reconnecting ${when}` : `The server's live connection cannot be reached. Retrying ${when}`,
        "warning",
      );
      if (secs <= 0) clearInterval(socketCountdown);
    };
    say();
    socketCountdown = setInterval(say, 1000); // the banner counts down
  },
});
loadPlotlyAfterFirstTrace(state, say("plotly"));

// ---- start: the socket's handshake runs while the model list loads

function openHash() {
  const missing = state.openHash(location.hash, DEFAULT_MODEL);
  if (!missing) return;
  const listed = state.listed.find((c) => c.id === missing);
  const why = listed ? `is unavailable here (${listed.problem || "it reads vectors, not typed text"})` : "is not on this server";
  banner.set("hash", `The link names model '${missing}', which ${why}; showing ${state.model}.`, "warning");
}

async function start() {
  live.connect();
  let cards;
  try {
    cards = await listModels();
  } catch (e) {
    banner.set("models", `${e.message} Reload the page when the server is up.`);
    return;
  }
  if (!cards.length) {
    banner.set("models", "This server has no models to show.");
    return;
  }
  state.setCards(cards);
  openHash();
  addEventListener("hashchange", () => {
    if (location.hash !== state.toHash()) openHash();
    else state.writeHash(); // the hash names what is shown: later changes write over it again
  });
}

start();
