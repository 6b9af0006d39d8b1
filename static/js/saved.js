/**
 * The saved page's wiring (templates/saved.html, built by POST /api/page): the same markup (templates/parts/views.html),
 * state and views as the live page (diagram, heatmaps, scrubber, overview strip, step cards, predictions, legends,
 * presentation mode, the unit up close), wired as main.js wires them, on the trace the file carries. There is no
 * server: api.js's SavedSync reads the embedded trace where the live page's LiveSync reads the socket. A page saved
 * while comparing carries run b too (saved.b, and the pair's compare / compared): side.js draws it beside a's as on
 * the live page, from b's embedded trace.
 *
 * For tests: window.gatescope = {state, side (with run b), lastDrawn()}, as on the live page.
 */

import { SavedSync, savedPage } from "./api.js";
import { Banner } from "./banner.js";
import { loadPlotlyAfterFirstTrace } from "./plotting.js";
import { SideRun } from "./side.js";
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

/** Run b beside a, from the file (a page saved while comparing). */
function openSide(saved, same, h) {
  const side = new SideRun(
    {
      row: document.querySelector(".cell-row"), diagramBox: $("side-diagram-box"), diagram: $("side-diagram"), heatmapsBox: $("side-heatmaps-box"),
      heatmaps: $("side-heatmaps"), title: $("side-title"), heatTitle: $("side-heat-title"), titleA: $("side-title-a"),
      heatTitleA: $("side-heat-title-a"),
    },
    state,
    { sync: (b) => new SavedSync(b, saved.b) },
  );
  window.gatescope.side = side;
  const cards = [saved.card, ...(saved.b.card.id === saved.card.id ? [] : [saved.b.card])];
  state.setCards(cards); // b's state takes a's list: it needs b's card
  const unit = same && h.vs_unit !== undefined ? h.vs_unit : saved.compare.unit; // b's own unit, as a reload's hash left it
  state.setCompare({ ...saved.compare, unit });
  state.setCompared(saved.compared);
}

try {
  const saved = savedPage();
  const h = parseHash(location.hash); // a reload keeps the step and unit that scrubbing left in the hash
  const same = h.model === saved.card.id && h.text === saved.text;
  new SavedSync(state, saved).open(same ? { layer: h.layer, unit: h.unit, t: h.t, win: h.win } : {});
  if (saved.b) openSide(saved, same, h);
} catch (e) {
  banner.set("saved", `This saved page cannot be read: ${e.message}`);
}
