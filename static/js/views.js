/**
 * The views the live page (main.js) and a saved page (saved.js) share, built and hooked together once: the
 * diagram, the heatmaps, the scrubber, the overview strip, the step cards, the unit up close, the legends and
 * presentation mode, over the shared markup (templates/parts/views.html). Views never call each other: the hover
 * hooks made here are the only links between them (a box lights its heatmap and its card; a card lights its
 * step; a heatmap its box), and they fall back to what the story lights (state.highlight; null on a saved page).
 */

import { Diagram } from "./diagram.js";
import { Heatmaps } from "./heatmaps.js";
import { HoldMenu, canHold } from "./hold.js";
import { Inspector } from "./inspector.js";
import { mountLegend } from "./legend.js";
import { Overview } from "./overview.js";
import { Presenter } from "./present.js";
import { Scrubber } from "./scrubber.js";
import { Steps } from "./steps.js";

/** Builds the shared views on `state`; `$(id)` finds an element, `say(key)` a banner hook; `hold`: the diagram's
 *  parts and the unit panel's button open the hold menu (a live page: the server runs what it holds). Returns the
 *  hooked ones. */
export function mountViews(state, $, say, { hold = false } = {}) {
  const menu = hold ? new HoldMenu(document.body, state) : null;
  // the hover hooks refer to each other's view: they run only on pointer events, after every view exists
  const heatmaps = new Heatmaps($("heatmaps"), state, {
    onGate: (gate) => diagram.highlight(gate ?? state.highlight), // the story's gate stays lit when the pointer leaves
    onError: say("export"),
  });
  const diagram = new Diagram({ root: $("diagram"), tools: { png: $("diagram-png"), svg: $("diagram-svg") }, direction: $("diagram-direction") }, state, {
    onGate: (gate) => {
      heatmaps.highlight(gate ?? state.highlight);
      steps.highlight(gate); // both ways: a box or op lights the card of its step
    },
    onError: say("export"),
    onPick: (part, g) => menu?.open(part, g),
  });
  if (menu) {
    const holdUnit = $("hold-unit"); // the live page's only
    holdUnit.addEventListener("click", () => (menu.isOpen ? menu.close() : menu.open(null, holdUnit)));
    state.subscribe((changed) => {
      if (changed.has("model") || changed.has("unit") || changed.has("trace")) {
        holdUnit.hidden = !canHold(state.card) || !state.T;
        holdUnit.textContent = `Hold unit ${state.unit}…`;
      }
    });
  }
  new Scrubber(
    { range: $("scrubber"), timestep: $("timestep"), play: $("play"), speed: $("speed"), unit: $("unit"), known: $("known"), layer: $("layer") },
    state,
  );
  new Overview($("overview"), state);
  const steps = new Steps($("steps"), state, {
    onGate: (gate, lights) => {
      diagram.highlight(lights ?? gate ?? state.highlight); // the whole step: every box, op and line of it
      heatmaps.highlight(gate ?? state.highlight);
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
  return { heatmaps, diagram, steps };
}
