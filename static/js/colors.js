/**
 * The colour scales every view shares, so a value has one colour on the diagram's strips, the
 * heatmaps and the inspector. Three scales:
 *   gate    sequential over [0, 1] (sigmoid gates f, i, o, z, r and 1 − z)
 *   signed  diverging over [−1, 1] (tanh outputs C̃, h̃, h, tanh(C) and products bounded by 1)
 *   cell    diverging over [−m, m], m = the largest |C| shown, stated by the view (C and the products that
 *           carry it: unbounded). Colours follow asinh(C): near-linear within ±1, then logarithmic, so
 *           a unit at 0.5 and one integrating to 300 are both visible (on a linear ±300 scale the first
 *           would be white).
 */

/** Stops of the sequential scale (viridis, perceptually even, readable in grey). */
const GATE_STOPS = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"];
/** Stops of the diverging scales: blue below zero, near-white at zero, red above (ColorBrewer RdBu). */
const DIVERGING_STOPS = ["#2166ac", "#67a9cf", "#f7f7f7", "#ef8a62", "#b2182b"];

/** Which scale each gate or line key uses. */
export const SCALE_OF = {
  f: "gate", i: "gate", o: "gate", z: "gate", r: "gate", one_minus_z: "gate",
  c_tilde: "signed", h_tilde: "signed", h: "signed", h_prev: "signed", tanh_c: "signed", m: "signed",
  i_c_tilde: "signed", r_h_prev: "signed", z_h_tilde: "signed", one_minus_z_h_prev: "signed",
  c: "cell", c_prev: "cell", f_c_prev: "cell",
};

/** The scale's name for a gate or line key. */
export function scaleOf(key) {
  const s = SCALE_OF[key];
  if (s === undefined) throw new Error(`Unknown gate '${key}'`);
  return s;
}

/** The value range [lo, hi] of a scale; `cellMax` is the stated half-range of the cell scale. */
export function rangeOf(scale, cellMax = 1) {
  if (scale === "gate") return [0, 1];
  if (scale === "signed") return [-1, 1];
  if (scale === "cell") return [-cellMax, cellMax];
  throw new Error(`Unknown scale '${scale}'`);
}

function stopsOf(scale) {
  return scale === "gate" ? GATE_STOPS : DIVERGING_STOPS;
}

/** A plotly.js colorscale ([[0, "#..."], ..., [1, "#..."]]) for a scale. */
export function plotlyScale(scale) {
  const stops = stopsOf(scale);
  return stops.map((c, k) => [k / (stops.length - 1), c]);
}

const _rgb = (hex) => [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16));
const _TABLES = {};

/** Shades per scale in the lookup tables colourOf reads and the heatmap rasters paint with (enough that
 *  neighbours look the same). */
export const SHADES = 256;

/** The SHADES CSS colours of a scale, shade k at position k / (SHADES − 1) (what colourOf picks from). */
export function shadesOf(scale) {
  return table(scale);
}

function table(scale) {
  if (_TABLES[scale]) return _TABLES[scale];
  const stops = stopsOf(scale).map(_rgb);
  const out = new Array(SHADES);
  for (let k = 0; k < SHADES; k++) {
    const x = (k / (SHADES - 1)) * (stops.length - 1);
    const j = Math.min(Math.floor(x), stops.length - 2);
    const w = x - j;
    const c = stops[j].map((a, n) => Math.round(a + w * (stops[j + 1][n] - a)));
    out[k] = `rgb(${c[0]},${c[1]},${c[2]})`;
  }
  return (_TABLES[scale] = out);
}

/** Where asinh bends from linear to logarithmic, in units of C. */
export const CELL_SOFT = 1;

/** Where `value` falls on its key's scale, in [0, 1] (values past the range take the ends). */
export function positionOf(key, value, cellMax = 1) {
  const scale = scaleOf(key);
  let x;
  if (scale === "cell") {
    x = 0.5 + (0.5 * Math.asinh(value / CELL_SOFT)) / Math.asinh((cellMax || 1) / CELL_SOFT);
  } else {
    const [lo, hi] = rangeOf(scale, cellMax);
    x = (value - lo) / (hi - lo || 1);
  }
  return x <= 0 ? 0 : x >= 1 ? 1 : x || 0;
}

/** Colour-bar ticks for the cell scale: positions in [−1, 1] and their labels in units of C. */
export function cellTicks(cellMax) {
  const m = cellMax || 1;
  const vals = [0];
  for (let p = 1; p <= m * 1.0001; p *= 10) vals.push(p, -p);
  if (vals.length < 4) vals.push(m, -m);
  vals.sort((a, b) => a - b);
  return { tickvals: vals.map((v) => 2 * positionOf("c", v, m) - 1), ticktext: vals.map((v) => (v < 0 ? "−" : "") + Math.abs(+v.toPrecision(2))) };
}

/** The CSS colour of `value` for a gate or line key (values past the range take the end colour). */
export function colourOf(key, value, cellMax = 1) {
  return table(scaleOf(key))[Math.round(positionOf(key, value, cellMax) * (SHADES - 1))];
}

/** Whether text on a background of this value should be dark (true) or light. */
export function darkTextOn(key, value, cellMax = 1) {
  const x = positionOf(key, value, cellMax);
  return scaleOf(key) === "gate" ? x > 0.45 : Math.abs(x - 0.5) < 0.3;
}
