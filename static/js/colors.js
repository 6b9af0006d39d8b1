/**
 * The colour scales every view shares, so a value has one colour on the diagram's strips, the
 * heatmaps and the inspector. Three scales:
 *   gate    sequential over [0, 1] (sigmoid gates f, i, o, z, r and 1 − z)
 *   signed  diverging over [−1, 1] (tanh outputs C̃, h̃, h, tanh(C) and products bounded by 1)
 *   cell    diverging over [−m, m], m stated by the view (C and the products that carry it: unbounded)
 */

/** Stops of the sequential scale (viridis, perceptually even, readable in grey). */
const GATE_STOPS = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"];
/** Stops of the diverging scales: blue below zero, near-white at zero, red above (ColorBrewer RdBu). */
const DIVERGING_STOPS = ["#2166ac", "#67a9cf", "#f7f7f7", "#ef8a62", "#b2182b"];

/** Which scale each gate or line key uses. */
export const SCALE_OF = {
  f: "gate", i: "gate", o: "gate", z: "gate", r: "gate", one_minus_z: "gate",
  c_tilde: "signed", h_tilde: "signed", h: "signed", h_prev: "signed", tanh_c: "signed",
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

/** Shades per scale in the lookup tables colourOf reads (enough that neighbours look the same). */
const SHADES = 256;

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

/** The CSS colour of `value` for a gate or line key (values past the range take the end colour). */
export function colourOf(key, value, cellMax = 1) {
  const scale = scaleOf(key);
  const [lo, hi] = rangeOf(scale, cellMax);
  const x = Math.min(1, Math.max(0, (value - lo) / (hi - lo || 1)));
  return table(scale)[Math.round(x * (SHADES - 1))];
}

/** Whether text on a background of this value should be dark (true) or light. */
export function darkTextOn(key, value, cellMax = 1) {
  const scale = scaleOf(key);
  const [lo, hi] = rangeOf(scale, cellMax);
  const x = Math.min(1, Math.max(0, (value - lo) / (hi - lo || 1)));
  return scale === "gate" ? x > 0.45 : Math.abs(x - 0.5) < 0.3;
}
