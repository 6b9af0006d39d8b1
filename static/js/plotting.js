/**
 * What the page's plotly charts share: fonts, axis style, the colour lookup tables the heatmap
 * rasters paint with (built from colors.js, so a value has one colour everywhere).
 */

import { SHADES, scaleOf, shadesOf } from "./colors.js";

/** A colour the page's CSS defines (main.css :root, light or dark as the system says), else `fallback`. */
export function cssColour(name, fallback) {
  const v = typeof document === "undefined" ? "" : getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

/** Font of chart text (the page's; its colour follows the colour scheme). */
export const FONT = { family: "system-ui, -apple-system, 'Segoe UI', sans-serif", size: 12, color: cssColour("--chart-text", "#2b3137") };
// The colours below are live bindings: a change of the system's colour scheme reads them again (onColourScheme).
/** Colour of secondary chart text (a title's role, a scale's range). */
export let MUTED = cssColour("--muted", "#5b646d");
/** Colour of tick labels. */
export let TICK_COLOUR = cssColour("--chart-tick", "#4a535c");
/** Colour of cursors and outlines drawn in a chart (the current step, the selected unit). */
export let INK = cssColour("--ink", "#111");
/** Background of an exported chart: the panel's. */
export let PAPER = cssColour("--panel", "#ffffff");
/** Font of tokens on axes. */
export const MONO = "ui-monospace, 'SFMono-Regular', Menlo, Consolas, 'DejaVu Sans Mono', monospace";
/** Colour of axis lines and ticks. */
export let AXIS_COLOUR = cssColour("--chart-axis", "#8a939c");

/** The charts' own colours: key → [CSS custom property (main.css, light and dark), fallback]. */
const CHART = {
  a: ["--chart-a", "#1f5fbf"],
  b: ["--chart-b", "#c2410c"],
  cursor: ["--chart-cursor", "#2b3137"],
  held: ["--chart-held", "rgba(217, 119, 6, 0.95)"],
  heldFill: ["--chart-held-fill", "rgba(217, 119, 6, 0.1)"],
  feature: ["--chart-feature", "#6b747d"],
  unit: ["--chart-unit", "#c43a4c"],
  series: [
    ["--chart-series-1", "#2f6db5"],
    ["--chart-series-2", "#7a5195"],
    ["--chart-series-3", "#1f7f74"],
    ["--chart-series-4", "#8a6d3b"],
  ],
  target: ["--chart-target", "#2b3137"],
  grid: ["--chart-grid", "#eceff1"],
  point: ["--chart-point", "rgba(31, 95, 191, 0.55)"],
  selected: ["--chart-selected", "#d1242f"],
  band: ["--chart-band", "rgba(138, 147, 156, 0.08)"],
  mean: ["--chart-mean", "#111"],
  barEdge: ["--chart-bar-edge", "rgba(0, 0, 0, 0.3)"],
  line: ["--chart-line", "#2f3a45"], // a unit's curves (inspector.js; neutral: the strips' scales give the meaning)
};

let _colours = null;

/** The charts' colours as the page's CSS defines them (light or dark): {a, b, cursor, held, heldFill, feature,
 *  unit, series: [4], target, grid, point, selected, band, mean, barEdge, line}. Read once per colour scheme (a draw asks
 *  at each draw: scrubbing's cursor costs no style lookup). */
export function chartColours() {
  const read = ([name, fallback]) => cssColour(name, fallback);
  _colours ??= Object.fromEntries(Object.entries(CHART).map(([k, v]) => [k, k === "series" ? v.map(read) : read(v)]));
  return _colours;
}

/** The system's dark-mode query (null without a window). */
const _DARK = typeof matchMedia === "undefined" ? null : matchMedia("(prefers-color-scheme: dark)");

/** Call fn() when the system's colour scheme changes (after the shared chart colours above are read again): a chart
 *  redraws with chartColours(). */
export function onColourScheme(fn) {
  _DARK?.addEventListener("change", () => fn());
}

onColourScheme(() => {
  _colours = null;
  FONT.color = cssColour("--chart-text", "#2b3137");
  MUTED = cssColour("--muted", "#5b646d");
  TICK_COLOUR = cssColour("--chart-tick", "#4a535c");
  INK = cssColour("--ink", "#111");
  PAPER = cssColour("--panel", "#ffffff");
  AXIS_COLOUR = cssColour("--chart-axis", "#8a939c");
});

/** Plotly config for every chart: no mode bar (the page has its own export buttons), no logo. */
export const CONFIG = { displayModeBar: false, displaylogo: false, responsive: false, doubleClick: false, showTips: false };

/** An axis in the page's style. */
export function axis(extra = {}) {
  return {
    fixedrange: true,
    showgrid: false,
    zeroline: false,
    linecolor: AXIS_COLOUR, // read at each call: the colour scheme may have changed
    tickcolor: AXIS_COLOUR,
    ticks: "outside",
    ticklen: 3,
    tickfont: { size: 11, color: TICK_COLOUR },
    ...extra,
  };
}

const _luts = {};

/**
 * RGBA lookup table of a gate key's scale: SHADES entries packed little-endian into Uint32
 * (for an ImageData's Uint32 view). Entry k is the colour of lo + k/(SHADES − 1)·(hi − lo), rounded
 * as colors.js's colourOf rounds.
 */
export function lutOf(key) {
  const scale = scaleOf(key);
  if (_luts[scale]) return _luts[scale];
  // shade k is the colour at position k on the scale (the heatmaps compute positions: asinh for the cell scale;
  // building it from values spaced evenly over [−1, 1] bent the cell scale's colours through asinh twice)
  const shades = shadesOf(scale);
  const lut = new Uint32Array(SHADES);
  for (let k = 0; k < SHADES; k++) {
    const [r, g, b] = shades[k].match(/\d+/g).map(Number);
    lut[k] = (255 << 24) | (b << 16) | (g << 8) | r;
  }
  return (_luts[scale] = lut);
}

/** Steps of headroom the time axis keeps, as a share of T (so a keystroke rarely moves the axis). */
const HEADROOM = 1 / 25;

/**
 * Extent of the time axis (in steps) for T steps: T itself for short texts (each token labelled),
 * else T rounded up to a round step of about T/25, so typing moves the axis once every ~T/25 keys.
 */
export function timeExtent(T, exact = false) {
  if (exact || T <= 40) return Math.max(T, 1);
  const raw = T * HEADROOM;
  const p = 10 ** Math.floor(Math.log10(raw));
  const q = raw / p >= 5 ? 5 * p : raw / p >= 2 ? 2 * p : p;
  return Math.ceil((T + 1) / q) * q;
}

let _resolve = null;
let _reject = null;
const _ready = new Promise((resolve, reject) => {
  _resolve = resolve;
  _reject = reject;
});
_ready.catch(() => {});
let _asked = false;

/**
 * Load plotly.js once, as a classic script (global Plotly) from the server's /vendor copy (a saved page's own
 * script[data-plotly], async, when the page carries one).
 * It is 4.8 MB: its first compile takes ~1 s on a small machine, so the page asks for it after the
 * first trace is drawn (loadPlotlyAfterFirstTrace: the cells, the diagram and the numbers need no
 * plotly; the charts' frames do).
 */
export function loadPlotly() {
  if (!_asked) {
    _asked = true;
    const carried = document.querySelector("script[data-plotly]"); // a saved page carries plotly.js itself
    if (window.Plotly) _resolve(window.Plotly);
    else if (carried) {
      carried.addEventListener("load", () => _resolve(window.Plotly));
      carried.addEventListener("error", () => _reject(new Error("the plotly.js this page carries did not load")));
    } else {
      const script = document.createElement("script");
      script.src = "/vendor/plotly.min.js";
      script.onload = () => _resolve(window.Plotly);
      script.onerror = () => _reject(new Error("plotly.js did not load from /vendor/plotly.min.js"));
      document.head.append(script);
    }
  }
  return _ready;
}

/** How long the page waits for a first trace before it loads plotly.js anyway (ms). */
const PLOTLY_LATEST_MS = 2500;

/** Load plotly.js once the state's first trace is on screen (in the task after its frame), or after
 *  PLOTLY_LATEST_MS if no trace comes first; onError(message) when it does not load. */
export function loadPlotlyAfterFirstTrace(state, onError) {
  const load = () => loadPlotly().catch((e) => onError(e.message));
  const unsubscribe = state.subscribe((changed) => {
    if (!changed.has("trace") || !state.T) return;
    unsubscribe();
    requestAnimationFrame(() => setTimeout(load, 0));
  });
  setTimeout(load, PLOTLY_LATEST_MS);
}

/** Resolves when plotly.js is ready (without asking for it). */
export function plotlyReady() {
  return _ready;
}

/** Whether plotly.js is ready to draw. */
export function hasPlotly() {
  return typeof window.Plotly === "object" && window.Plotly !== null;
}

/** Gap between the pointer and its tooltip, px. */
const TIP_GAP = 14;

/** Places a fixed tooltip beside the pointer, flipped to the pointer's other side where it would leave the window. */
export function placeTip(tip, ev) {
  const box = tip.getBoundingClientRect();
  let x = ev.clientX + TIP_GAP;
  let y = ev.clientY + TIP_GAP;
  if (x + box.width > innerWidth - 4) x = ev.clientX - box.width - TIP_GAP;
  if (y + box.height > innerHeight - 4) y = ev.clientY - box.height - TIP_GAP;
  tip.style.transform = `translate(${x}px, ${y}px)`;
}
