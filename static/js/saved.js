/**
 * The saved page's wiring (templates/saved.html, built by POST /api/page): the same markup (templates/parts/views.html),
 * state and views as the live page (diagram, heatmaps, scrubber, overview strip, step cards, predictions, legends,
 * presentation mode, the unit up close), wired as main.js wires them, on the trace the file carries. There is no
 * server: api.js's SavedSync reads the embedded trace where the live page's LiveSync reads the socket.
 *
 * For tests: window.gatescope = {state, lastDrawn()}, as on the live page.
 */

import { SavedSync, savedPage } from "./api.js";
import { Banner } from "./banner.js";
import { Diagram } from "./diagram.js";
import { Heatmaps } from "./heatmaps.js";
import { Inspector } from "./inspector.js";
import { mountLegend } from "./legend.js";
import { Overview } from "./overview.js";
import { loadPlotlyAfterFirstTrace } from "./plotting.js";
import { Presenter } from "./present.js";
import { Scrubber } from "./scrubber.js";
import { State, parseHash } from "./state.js";
import { Steps } from "./steps.js";

const $ = (id) => {
  const node = document.getElementById(id);
  if (!node) throw new Error(`Missing element '#${id}'`);
  return node;
};

const state = new State();
const banner = new Banner($("banner"), state);
const say = (key) => (text, level) => banner.set(key, text, level);

const heatmaps = new Heatmaps($("heatmaps"), state, { onGate: (gate) => diagram.highlight(gate), onError: say("export") });
const diagram = new Diagram({ root: $("diagram"), tools: { png: $("diagram-png"), svg: $("diagram-svg") }, direction: $("diagram-direction") }, state, {
  onGate: (gate) => {
    heatmaps.highlight(gate);
    steps.highlight(gate); // both ways: a box or op lights the card of its step
  },
  onError: say("export"),
});
new Scrubber(
  { range: $("scrubber"), timestep: $("timestep"), play: $("play"), speed: $("speed"), unit: $("unit"), known: $("known"), layer: $("layer") },
  state,
);
new Overview($("overview"), state);
const steps = new Steps($("steps"), state, {
  onGate: (gate, lights) => {
    diagram.highlight(lights ?? gate); // the whole step: every box, op and line of it
    heatmaps.highlight(gate);
  },
});
new Inspector(
  {
    title: $("inspector-title"), curves: $("curves"), curveTools: { png: $("curves-png"), svg: $("curves-svg") }, gate: $("text-gate"),
    legend: $("text-legend"), text: $("coloured-text"), textTitle: $("text-title"), preds: $("preds"), predsBox: $("preds-box"),
    predsTitle: $("preds-title"),
  },
  state,
  { onError: say("export") },
);
for (const id of ["diagram", "unit", "heatmaps"]) mountLegend($(`${id}-legend`), id);
new Presenter({ toggle: $("present") }, state);
window.gatescope = { state, lastDrawn: () => heatmaps.lastDrawn };
loadPlotlyAfterFirstTrace(state, say("plotly")); // the file's own plotly.js (script[data-plotly]), as the live page does

try {
  const saved = savedPage();
  const h = parseHash(location.hash); // a reload keeps the step and unit that scrubbing left in the hash
  const same = h.model === saved.card.id && h.text === saved.text;
  new SavedSync(state, saved).open(same ? { layer: h.layer, unit: h.unit, t: h.t } : {});
} catch (e) {
  banner.set("saved", `This saved page cannot be read: ${e.message}`);
}
