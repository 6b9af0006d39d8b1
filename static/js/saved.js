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
import { loadPlotlyAfterFirstTrace } from "./plotting.js";
import { State, parseHash } from "./state.js";
import { mountViews } from "./views.js";

const $ = (id) => {
  const node = document.getElementById(id);
  if (!node) throw new Error(`Missing element '#${id}'`);
  return node;
};

const state = new State();
const banner = new Banner($("banner"), state);
const say = (key) => (text, level) => banner.set(key, text, level);

const { heatmaps } = mountViews(state, $, say);
window.gatescope = { state, lastDrawn: () => heatmaps.lastDrawn };
loadPlotlyAfterFirstTrace(state, say("plotly")); // the file's own plotly.js (script[data-plotly]), as the live page does

try {
  const saved = savedPage();
  const h = parseHash(location.hash); // a reload keeps the step and unit that scrubbing left in the hash
  const same = h.model === saved.card.id && h.text === saved.text;
  new SavedSync(state, saved).open(same ? { layer: h.layer, unit: h.unit, t: h.t, win: h.win } : {});
} catch (e) {
  banner.set("saved", `This saved page cannot be read: ${e.message}`);
}
