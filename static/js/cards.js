/**
 * What a model card (GET /api/models) tells the page beyond its sizes: its known units, the unit to show
 * first, how its cell type reads. Plain functions of a card: no state, no DOM.
 */

import { fmt } from "./format.js";

/** How the cell types read in the picker. */
export const CELL_NAME = { lstm: "LSTM", peephole: "peephole LSTM", coupled: "coupled-gate LSTM", gru: "GRU", rnn: "plain RNN" };

/** The card's known units as [{name, layer, unit, note, score}] (cards list them in a few shapes). */
export function knownUnits(card) {
  const out = [];
  const visit = (name, v) => {
    if (!v || typeof v !== "object") return;
    if (Array.isArray(v)) {
      for (const x of v) visit(name, x);
      return;
    }
    if (typeof v.unit === "number") {
      const label = v.feature || name;
      const note = typeof v.r === "number" ? `r = ${fmt(v.r)}` : typeof v.separation === "number" ? `separation ${fmt(v.separation)}` : "";
      out.push({ name: label, layer: v.layer ?? 0, unit: v.unit, note, score: Math.abs(v.r ?? v.separation ?? 0) });
      return;
    }
    for (const [k, x] of Object.entries(v)) visit(k === "features" ? name : k, x);
  };
  visit("unit", card?.telling_units);
  return out;
}

/** The known unit at (layer, unit) of a card, or undefined. */
export function knownUnitAt(card, layer, unit) {
  return knownUnits(card).find((k) => k.unit === unit && k.layer === layer);
}

/** The unit to show first for a card: its most telling known unit, else unit 0 of layer 0. */
export function defaultUnit(card) {
  const known = knownUnits(card);
  if (!known.length) return { unit: 0, layer: 0 };
  const best = known.reduce((a, b) => (b.score > a.score ? b : a));
  return { unit: best.unit, layer: best.layer };
}

/** The gate the text is coloured by at first: the cell state C when the cell has one, else h. */
export function defaultTextGate(card) {
  return card.gates.includes("c") ? "c" : "h";
}

/** Units of each layer's arrays: H, or 2H for a bidirectional model (forward units 0..H−1, backward H..2H−1). */
export function unitsOf(card) {
  return card?.units ?? card?.hidden_size ?? 0;
}

/** The directions of a card's layers, one per block of hidden_size units: ["forward"], ["backward"] or both. */
export function directionsOf(card) {
  return card?.directions?.length ? card.directions : ["forward"];
}

/** The direction unit `u` belongs to ("forward" | "backward") and its first unit. */
export function directionOf(card, u) {
  const dirs = directionsOf(card);
  const H = card?.hidden_size || 1;
  const k = Math.max(0, Math.min(dirs.length - 1, Math.floor(u / H)));
  return { direction: dirs[k], start: k * H };
}

/** What the card says of a model with a backward direction (null for a forward one). */
export function directionNote(card) {
  const dirs = directionsOf(card);
  if (!dirs.includes("backward")) return null;
  const how = "live edits recompute the backward direction over the whole text (O(T) per edit)";
  if (dirs.length > 1) return `Bidirectional: units 0–${card.hidden_size - 1} read forward, ${card.hidden_size}–${2 * card.hidden_size - 1} backward (from the end); ${how}.`;
  return `Reverse: every unit reads the text backward, from the end; ${how}.`;
}
