/**
 * One heatmap per gate of the model: units (rows) × timesteps (columns), the selected layer.
 *
 * plotly.js draws each chart's frame: title, axes (tokens along time), colour bar, and the PNG/SVG
 * exports. The cells themselves are a raster painted into a <canvas> laid exactly over plotly's plot
 * area, one pixel per (t, unit), from colors.js's scales: plotly's own heatmap redraw costs ~35 ms for
 * 1,000 × 128 cells (six gates: ~200 ms a keystroke), the raster paints only the new columns. The
 * cursor (t) and the unit marker are elements over the plot area, so scrubbing moves two boxes and
 * never redraws a chart.
 *
 * Change costs: "t"/"unit" move two boxes (no plotly call); "trace" paints the new columns in the
 * next animation frame, and relayouts the time axis only when its extent moves (it keeps ~T/25 steps
 * of headroom, so once every ~T/25 keystrokes; every keystroke while each token is labelled);
 * "layer" or a new C range repaints all. plotly.js arrives after the first trace (plotting.js):
 * until then the cells show without their frames.
 *
 * A text longer than state.windowSize shows a window of it (state.view: the steps [start, stop), which follows t;
 * overview.js moves and zooms it): the raster holds the window's columns only, so a 20,000-step text paints and
 * relayouts no more than a short one, and the cells stay as wide as a short text's. "window" repaints the window.
 * Tokens label the time axis when each fits (PX_PER_TOKEN_LABEL), else step numbers do.
 *
 * Rows follow state.orderRows (the unit drawn in each row; null: by id), labelled with the unit ids; clicking
 * still selects by id. "order" repaints every panel. Shift-click a cell to select the span from step t to the
 * clicked step (state.setSpan: the pattern match's span), shown as a band over every heatmap.
 */

import { directionsOf, gateWidth } from "./cards.js";
import { CELL_SOFT, SHADES, cellTicks, plotlyScale, rangeOf, scaleOf } from "./colors.js";
import { captionOf, downloadFigure, slug } from "./export.js";
import { MATH, SHORT, el, esc, fmt, showToken } from "./format.js";
import { AXIS_COLOUR, CONFIG, FONT, INK, MONO, MUTED, TICK_COLOUR, axis, hasPlotly, loadPlotly, lutOf, placeTip, plotlyReady, timeExtent } from "./plotting.js";

/** What each gate is called beside its math name. */
const ROLE = {
  f: "forget gate", i: "input gate", c_tilde: "candidate", c: "cell state", o: "output gate", h: "hidden state",
  z: "update gate", r: "reset gate", h_tilde: "candidate",
};

/** Margins of each chart in px (fixed, so the plot area is known without asking plotly). */
const MARGIN = { l: 46, r: 64, t: 30, b: 34 };
/** Milliseconds of a frame the rasters may take before the rest wait for the next frame (and a plotly call with them). */
const PAINT_BUDGET_MS = 6;
/** Columns painted in a frame past which that frame makes no plotly call (a keystroke's few keep theirs). */
const WHOLE_COLS = 32;
/** Pixels a token label needs on the time axis before tokens replace step numbers. */
const PX_PER_TOKEN_LABEL = 11;

/** Plot height for H units: two px a unit within [90, 200]. */
/** Least height of the selected unit's band, in CSS px. */
const UNIT_BAND = 4;

function plotHeight(H) {
  return Math.max(90, Math.min(200, 2 * H));
}

class Panel {
  constructor(gate, hooks) {
    this.gate = gate;
    this.scale = scaleOf(gate);
    this.lut = lutOf(gate);
    this.hooks = hooks;
    const name = hooks.name || "heatmap"; // prefixes the test ids (a second run's heatmaps: side.js)
    this.root = el("figure", { class: "hm", "data-gate": gate, "data-testid": `${name}-${gate}` });
    this.plot = el("div", { class: "hm-plot" });
    this.area = el("div", { class: "hm-area" });
    this.canvas = el("canvas", { class: "hm-cells", "aria-hidden": "true" });
    this.cursorT = el("div", { class: "hm-cursor-t" });
    this.cursorU = el("div", { class: "hm-cursor-u" });
    this.spanBand = el("div", { class: "hm-span", "data-testid": `${name}-span` });
    this.heldLayer = el("div", { class: "hm-held-layer" }); // the cells an intervention holds (intervene.js)
    this.hit = el("div", {
      class: "hm-hit",
      role: "img",
      "aria-label": `Heatmap of ${ROLE[gate] || gate} ${SHORT[gate] || gate}: units by timesteps. Click a cell to select its step and unit; shift-click to select the span from step t to it.`,
    });
    // a bidirectional layer: a rule between its forward and backward units, and their names
    this.splitLine = el("div", { class: "hm-split", hidden: true });
    this.splitNames = [
      el("span", { class: "hm-half", "data-testid": `${name}-half`, text: "forward →", hidden: true }),
      el("span", { class: "hm-half", "data-testid": `${name}-half`, text: "← backward", hidden: true }),
    ];
    this.area.append(this.canvas, this.splitLine, ...this.splitNames, this.spanBand, this.heldLayer, this.cursorU, this.cursorT, this.hit);
    const png = el("button", { type: "button", class: "mini", text: "PNG", title: `Download the ${SHORT[gate]} heatmap as PNG` });
    const svg = el("button", { type: "button", class: "mini", text: "SVG", title: `Download the ${SHORT[gate]} heatmap as SVG` });
    png.addEventListener("click", () => hooks.onExport(this, "png"));
    svg.addEventListener("click", () => hooks.onExport(this, "svg"));
    this.tools = el("div", { class: "hm-tools" }, png, svg);
    this.root.append(this.plot, this.area, this.tools);
    this.ctx = null;
    this.cols = 0; // canvas width in columns (its capacity)
    this.painted = 0; // columns painted and still valid
    this.range = null; // [lo, hi] the painted columns used
    this.series = null;
    this.T = 0;
    this.a = 0; // the first step shown (the window's start; 0 without a window)
    this.span = 0; // steps the time axis spans when a window is shown (0: the whole text, with headroom)
    this.H = 0;
    this.split = 0; // a bidirectional layer's first backward unit (0: one direction)
    this.rows = null; // the unit drawn in each row (state.orderRows when it fits this gate), or null: by id
    this.rowOf = null; // its inverse
    this.width = 0;
    this.height = 0;
    this.axisKey = "";
    this.drawn = false;
  }

  get plotW() {
    return Math.max(10, this.width - MARGIN.l - MARGIN.r);
  }

  get plotH() {
    return plotHeight(this.H);
  }

  title(cellMax) {
    const name = `${MATH[this.gate] || this.gate}  <span style="color:${MUTED}">${ROLE[this.gate] || ""}</span>`;
    if (this.scale === "cell" && cellMax > 0) {
      return `${name}  <span style="color:${MUTED}">(±${fmt(cellMax)}, asinh)</span>`;
    }
    return name;
  }

  /** Whether every token gets a label on the time axis (few enough steps shown for the width). */
  labelled(T) {
    const n = this.span || T;
    return T > 0 && n * PX_PER_TOKEN_LABEL <= this.plotW;
  }

  /** Steps the time axis spans for T steps: the window's, or the whole text's with headroom. */
  extent(T) {
    return this.span || timeExtent(T, this.labelled(T));
  }

  colourRange(cellMax) {
    return rangeOf(this.scale, this.scale === "cell" ? cellMax || 1 : 1);
  }

  /** The plotly figure for this chart (frame only; the raster is separate). */
  figure(tokens, T, cellMax, t, unit, withRaster = null) {
    const [lo, hi] = this.colourRange(cellMax);
    const cellScale = this.scale === "cell"; // asinh colours: the bar's ticks are placed by cellTicks
    const H = this.H;
    const labelled = this.labelled(T);
    const R = this.extent(T);
    const a = this.a;
    const xa = axis({ range: [a - 0.5, a + R - 0.5], tickfont: { size: 11, color: TICK_COLOUR } });
    if (labelled) {
      const b = Math.min(T, a + R);
      const shown = Array.from({ length: Math.max(0, b - a) }, (_, k) => a + k);
      Object.assign(xa, {
        tickmode: "array",
        tickvals: shown,
        ticktext: shown.map((k) => showToken(tokens[k])),
        tickfont: { size: 11, family: MONO, color: FONT.color },
        tickangle: 0,
      });
    } else if (T > 0) {
      Object.assign(xa, { tickmode: "auto", nticks: Math.max(4, Math.floor(this.plotW / 60)), title: { text: "" } });
    } else {
      Object.assign(xa, { tickmode: "array", tickvals: [], ticktext: [] }); // no steps: no time ticks
    }
    const layout = {
      width: this.width,
      height: this.plotH + MARGIN.t + MARGIN.b,
      margin: { ...MARGIN, autoexpand: false, pad: 0 },
      font: FONT,
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      title: { text: this.title(cellMax), x: 0, xref: "paper", xanchor: "left", y: 1, yref: "container", yanchor: "top", pad: { t: 8 }, font: { size: 13 } },
      xaxis: xa,
      yaxis: axis({ range: [H - 0.5, -0.5], title: { text: "unit", standoff: 4, font: { size: 11 } }, nticks: Math.min(H, 6), ...this.rowTicks() }),
      showlegend: false,
    };
    const data = [
      {
        // carries the colour bar; its two cells lie far left of the visible range
        type: "heatmap",
        z: cellScale ? [[-1, 1]] : [[lo, hi]],
        x: [-1e9, -1e9 + 1],
        y: [0],
        zmin: cellScale ? -1 : lo,
        zmax: cellScale ? 1 : hi,
        colorscale: plotlyScale(this.scale),
        hoverinfo: "skip",
        showscale: true,
        colorbar: {
          thickness: 10,
          len: 1,
          lenmode: "fraction",
          x: 1,
          xpad: 8,
          xanchor: "left",
          y: 0.5,
          ypad: 0,
          outlinewidth: 0,
          ticks: "outside",
          ticklen: 3,
          tickcolor: AXIS_COLOUR,
          tickfont: { size: 11 },
          ...(cellScale ? { tickmode: "array", ...cellTicks(hi) } : { nticks: 5 }),
        },
      },
    ];
    if (withRaster) {
      layout.images = [
        { source: withRaster, xref: "x", yref: "y", x: a - 0.5, y: -0.5, sizex: Math.min(T, a + R) - a, sizey: H, sizing: "stretch", xanchor: "left", yanchor: "top", layer: "below" },
      ];
      layout.shapes = [
        { type: "rect", xref: "x", yref: "y", x0: t - 0.5, x1: t + 0.5, y0: -0.5, y1: H - 0.5, line: { color: INK, width: 1.5 } },
        { type: "rect", xref: "x", yref: "y", x0: a - 0.5, x1: Math.min(T, a + R) - 0.5, y0: this.rowFor(unit) - 0.5, y1: this.rowFor(unit) + 0.5, line: { color: "rgba(17,17,17,0.55)", width: 1 } },
      ];
    }
    if (this.split && !this.rows) {
      const half = (y, text) => ({ xref: "paper", yref: "y", x: 0.005, y, xanchor: "left", yanchor: "top", text, showarrow: false, font: { size: 10, color: "#1f2328" }, bgcolor: "rgba(255,255,255,0.8)" });
      layout.annotations = [half(-0.5, "forward →"), half(this.split - 0.5, "← backward")];
      layout.shapes = [...(layout.shapes || []), { type: "line", xref: "paper", yref: "y", x0: 0, x1: 1, y0: this.split - 0.5, y1: this.split - 0.5, line: { color: INK, width: 1.5, dash: "dot" } }];
    }
    return { data, layout };
  }

  /** The row unit u is drawn in. */
  rowFor(u) {
    return this.rowOf ? this.rowOf[u] : u;
  }

  /** The y axis's ticks when the rows are reordered: about six rows, labelled with their unit ids. */
  rowTicks() {
    if (!this.rows) return {};
    const step = Math.max(1, Math.ceil(this.H / 6));
    const vals = [];
    for (let r = 0; r < this.H; r += step) vals.push(r);
    return { tickmode: "array", tickvals: vals, ticktext: vals.map((r) => String(this.rows[r])) };
  }

  /** Draw rows in `rows` order (null: by id); returns whether it changed (the raster must be repainted). */
  setRows(rows) {
    const fits = rows && rows.length === this.H ? rows : null;
    if (fits === this.rows) return false;
    this.rows = fits;
    this.rowOf = null;
    if (fits) {
      this.rowOf = new Int32Array(fits.length);
      fits.forEach((u, r) => (this.rowOf[u] = r));
    }
    this.series = null; // repaint every column
    return true;
  }

  /** Paint the steps [from, T) of the raster that are shown (all of them when the range, buffer or window
   *  changed); view: the window ({start, stop}) when the text is longer than a window, else null. Returns the
   *  columns painted. */
  paint(series, T, cellMax, changedFrom, view = null) {
    const H = this.H;
    const [lo, hi] = this.colourRange(cellMax);
    const a = view ? view.start : 0;
    const span = view ? view.stop - view.start : 0;
    let from = series === this.series ? Math.min(this.painted, changedFrom) : 0;
    if (!this.range || this.range[0] !== lo || this.range[1] !== hi || a !== this.a || span !== this.span) from = 0;
    this.a = a;
    this.span = span;
    const last = view ? Math.min(T, view.stop) : T; // one past the last step shown
    const need = last - a;
    if (need > this.cols || !this.ctx) {
      let cols = Math.max(64, this.cols);
      while (cols < need) cols *= 2;
      this.canvas.width = cols;
      this.canvas.height = H;
      this.cols = cols;
      this.ctx = this.canvas.getContext("2d");
      from = 0;
    }
    this.series = series;
    this.range = [lo, hi];
    from = Math.max(from, a);
    const n = last - from;
    if (n > 0) {
      const img = this.ctx.createImageData(n, H);
      const px = new Uint32Array(img.data.buffer);
      const data = series.data;
      const lut = this.lut;
      const top = SHADES - 1;
      const k = top / (hi - lo || 1);
      const cell = this.scale === "cell";
      const ka = cell ? (0.5 * top) / Math.asinh(hi / CELL_SOFT) : 0;
      const rows = this.rows;
      for (let t = from; t < last; t++) {
        const base = t * H;
        const x = t - from;
        for (let r = 0; r < H; r++) {
          // the value's place on its scale (as colors.js positionOf), rounded to a shade; row r shows unit rows[r]
          const v = data[base + (rows ? rows[r] : r)];
          const q = cell ? 0.5 * top + ka * Math.asinh(v / CELL_SOFT) : (v - lo) * k;
          px[r * n + x] = lut[q <= 0 ? 0 : q >= top ? top : Math.round(q)];
        }
      }
      this.ctx.putImageData(img, from - a, 0);
    }
    // a shorter text: the columns past T belong to deleted steps; clear them (all columns when repainted whole)
    const stale = from === a ? this.cols : this.painted - a;
    if (stale > last - a) this.ctx.clearRect(last - a, 0, stale - (last - a), H);
    this.painted = last;
    this.T = T;
    this.placeRaster();
    return Math.max(0, n);
  }

  placeRaster() {
    this.R = this.extent(this.T);
    const w = this.plotW;
    const h = this.plotH;
    Object.assign(this.area.style, { left: `${MARGIN.l}px`, top: `${MARGIN.t}px`, width: `${w}px`, height: `${h}px` });
    // the frame's height, kept before plotly draws it: else each heatmap grows from 0 to its frame as plotly.js
    // arrives, and every heatmap below moves (a click aimed at a cell meanwhile lands on another step)
    this.plot.style.minHeight = `${h + MARGIN.t + MARGIN.b}px`;
    const R = this.R || 1;
    this.canvas.style.width = `${(w * this.cols) / R}px`;
    this.canvas.style.height = `${h}px`;
    this.canvas.style.visibility = this.T > 0 ? "visible" : "hidden";
    this.canvas.classList.toggle("is-pixelated", R <= w);
    const split = this.split > 0 && this.T > 0 && !this.rows; // reordered rows mix the two directions
    this.splitLine.hidden = !split;
    for (const n of this.splitNames) n.hidden = !split;
    if (split) {
      const y = (h * this.split) / this.H;
      this.splitLine.style.top = `${y - 0.75}px`;
      this.splitNames[0].style.top = "1px";
      this.splitNames[1].style.top = `${y + 1}px`;
    }
  }

  moveCursors(t, unit) {
    const T = this.T;
    const w = this.plotW;
    const h = this.plotH;
    if (T === 0) {
      this.cursorT.style.display = "none";
      this.cursorU.style.display = "none";
      return;
    }
    const cw = w / (this.R || 1);
    const x = (t - this.a) * cw;
    const width = Math.max(cw, 2);
    this.cursorT.style.display = t >= this.a && t < this.a + this.R ? "block" : "none"; // t outside the window: no cursor
    this.cursorT.style.transform = `translateX(${x + cw / 2 - width / 2}px)`;
    this.cursorT.style.width = `${width}px`;
    const rh = h / this.H;
    const row = this.rowFor(unit);
    this.cursorU.style.display = "block";
    const band = Math.max(rh, UNIT_BAND); // the selected unit's band: visible even when a row is under a pixel
    this.cursorU.style.transform = `translateY(${row * rh + rh / 2 - band / 2}px)`;
    this.cursorU.style.height = `${band}px`;
  }

  /** The heatmap in words, for a screen reader (its text alternative): size, colour range, and the selected unit's
   *  value at step t (`value`: the store's, or undefined when this gate has no such unit). */
  describe(t, unit, token, value, cellMax) {
    const name = `${ROLE[this.gate] || this.gate} ${SHORT[this.gate] || this.gate}`;
    const [lo, hi] = rangeOf(this.scale, cellMax || 1);
    const range = this.scale === "cell" ? `from ${fmt(lo)} to ${fmt(hi)} on an asinh scale` : `from ${fmt(lo)} to ${fmt(hi)}`;
    const at = !this.T ? "No steps yet." : value === undefined ? `Unit ${unit} has no ${name}.` : `At t = ${t} (${token}), unit ${unit}: ${fmt(value, 3)}.`;
    const label = `Heatmap of ${name}: ${this.H} units by ${this.T} steps, coloured ${range}. ${at} Click a cell to select its step and unit; shift-click to select the span from step t to it.`;
    if (this.hit.getAttribute("aria-label") !== label) this.hit.setAttribute("aria-label", label);
  }

  /** The (t, unit) under a mouse event, or null. */
  cellAt(ev) {
    if (!this.T) return null;
    const box = this.hit.getBoundingClientRect();
    const x = (ev.clientX - box.left) / box.width;
    const y = (ev.clientY - box.top) / box.height;
    if (x < 0 || x >= 1 || y < 0 || y >= 1) return null;
    const t = this.a + Math.floor(x * this.R);
    if (t >= this.T) return null;
    const row = Math.min(this.H - 1, Math.floor(y * this.H));
    return { t, unit: this.rows ? this.rows[row] : row };
  }

  /** Show the span [start, stop) as a band (null hides it). */
  moveSpan(span) {
    if (!span || !this.T) {
      this.spanBand.style.display = "none";
      return;
    }
    const cw = this.plotW / (this.R || 1);
    this.spanBand.style.display = "block";
    const x0 = Math.max(span.start, this.a) - this.a;
    const x1 = Math.min(span.stop, this.a + this.R) - this.a;
    this.spanBand.style.display = x1 > x0 ? "block" : "none";
    this.spanBand.style.transform = `translateX(${x0 * cw}px)`;
    this.spanBand.style.width = `${Math.max(2, (x1 - x0) * cw)}px`;
  }

  /** Outline the cells the interventions hold in this layer (each {layer, units, gate, from, to}); every gate's
   *  panel marks them: a held value changes what every gate computes from it. */
  markHeld(list, layer) {
    if (!list.length && !this.heldLayer.firstChild) return; // the common case, on every draw: nothing held
    this.heldLayer.replaceChildren();
    if (!this.T) return;
    const cw = this.plotW / (this.R || 1);
    const rh = this.plotH / this.H;
    for (const iv of list) {
      if ((iv.layer ?? 0) !== layer) continue;
      const units = iv.units ?? [iv.unit];
      const from = Math.max(iv.from ?? 0, this.a) - this.a; // in the window's columns
      const to = Math.min(iv.to ?? this.T, this.T, this.a + this.R) - this.a;
      if (to <= from) continue;
      for (const u of units) {
        const row = this.rowFor(u);
        if (row < 0 || row >= this.H) continue;
        const box = el("div", { class: "hm-held", "data-testid": "heatmap-held", title: `unit ${u}'s ${SHORT[iv.gate] || iv.gate} held here` });
        box.style.transform = `translate(${from * cw}px, ${row * rh}px)`;
        box.style.width = `${Math.max(2, (to - from) * cw)}px`;
        box.style.height = `${Math.max(2, rh)}px`;
        this.heldLayer.append(box);
      }
    }
  }

  /** The raster as a PNG data URL, cells enlarged to whole pixels (crisp in exports). */
  rasterURL() {
    const T = Math.min(this.T, this.a + this.R) - this.a; // the steps shown
    const H = this.H;
    const sx = Math.max(1, Math.ceil(1200 / T));
    const sy = Math.max(1, Math.ceil(400 / H));
    const c = document.createElement("canvas");
    c.width = T * sx;
    c.height = H * sy;
    const ctx = c.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(this.canvas, 0, 0, T, H, 0, 0, T * sx, H * sy);
    return c.toDataURL("image/png");
  }
}

/** The grid of heatmaps. hooks.onGate(gate|null) when one is hovered; hooks.name prefixes the panels' test ids
 *  (default "heatmap": heatmap-c ...; a second run's grid, side.js, takes another). */
export class Heatmaps {
  constructor(root, state, hooks = {}) {
    this.root = root;
    this.state = state;
    this.hooks = hooks;
    this.panels = [];
    this.grid = el("div", { class: "hm-grid" });
    this.tip = el("div", { class: "hm-tip", role: "tooltip", hidden: true });
    this.root.append(this.grid);
    document.body.append(this.tip); // position: fixed against the window: a panel (a composited layer, main.css) would hold it
    this._frame = 0;
    this._dirty = { data: false, frame: false };
    this._from = 0; // first step changed since the last render
    this._paintFrom = new Map(); // panel -> the first step its raster must repaint from (rasters still to paint)
    this.lastDrawn = { version: -1, at: 0 };
    this._width = 0;
    state.subscribe((changed) => this._onChange(changed));
    new ResizeObserver(() => this._resize()).observe(this.grid);
  }

  /** Light one gate's heatmap (the diagram's hover); null clears. Where the heatmaps are a scroll box (a wide
   *  page: beside the diagram), it scrolls to the lit one. */
  highlight(gate) {
    for (const p of this.panels) p.root.classList.toggle("is-highlit", p.gate === gate);
    const lit = this.panels.find((p) => p.gate === gate);
    const box = this.root;
    if (!lit || box.scrollHeight <= box.clientHeight + 1) return;
    const top = lit.root.offsetTop - 4;
    if (top < box.scrollTop || top + lit.root.offsetHeight > box.scrollTop + box.clientHeight) box.scrollTo({ top, behavior: "smooth" });
  }

  _onChange(changed) {
    if (changed.has("model")) this._build();
    if (changed.has("trace")) this._from = Math.min(this._from, this.state.trace.from);
    if (changed.has("layer") || changed.has("model")) this._from = 0;
    if (changed.has("trace") || changed.has("layer") || changed.has("model") || changed.has("window")) {
      this._dirty.data = true;
      this._schedule();
    }
    if (changed.has("order") || changed.has("model")) {
      let moved = false;
      for (const p of this.panels) moved = p.setRows(this.state.orderRows) || moved;
      if (moved) {
        this._from = 0;
        this._dirty.data = true;
        for (const p of this.panels) p.frameKey = ""; // new row labels
        this._schedule();
      }
    }
    if ((changed.has("t") || changed.has("unit")) && !this._dirty.data) this._moveCursors(); // else in the frame
    if (changed.has("span") || changed.has("trace")) for (const p of this.panels) p.moveSpan(this.state.span);
    if (changed.has("held") || changed.has("layer")) this._markHeld();
  }

  _build() {
    const card = this.state.card;
    if (hasPlotly()) for (const p of this.panels) Plotly.purge(p.plot);
    this.grid.replaceChildren();
    this.panels = [];
    this._paintFrom.clear();
    if (!card) return;
    this.grid.dataset.count = String(card.gates.length);
    const hooks = { name: this.hooks.name, onExport: (panel, format) => this._export(panel, format) };
    for (const gate of card.gates) {
      const p = new Panel(gate, hooks);
      p.H = gateWidth(card, gate);
      p.split = directionsOf(card).length > 1 ? card.hidden_size : 0;
      this._wire(p);
      this.panels.push(p);
      this.grid.append(p.root);
    }
    this._measure();
    for (const p of this.panels) p.drawn = false;
  }

  _measure() {
    for (const p of this.panels) p.width = Math.floor(p.root.clientWidth) || 400;
  }

  _resize() {
    const w = this.grid.clientWidth;
    if (!w || w === this._width) return;
    this._width = w;
    this._measure();
    for (const p of this.panels) p.frameKey = ""; // redraw frames at the new width
    this._dirty.frame = true;
    this._schedule();
  }

  _wire(p) {
    p.hit.addEventListener("mousemove", (ev) => {
      const cell = p.cellAt(ev);
      if (!cell) return this._hideTip();
      this._showTip(p, cell, ev);
    });
    p.hit.addEventListener("mouseenter", () => {
      p.root.classList.add("is-hovered");
      this.hooks.onGate?.(p.gate);
    });
    p.hit.addEventListener("mouseleave", () => {
      p.root.classList.remove("is-hovered");
      this._hideTip();
      this.hooks.onGate?.(null);
    });
    p.hit.addEventListener("click", (ev) => {
      const cell = p.cellAt(ev);
      if (!cell) return;
      if (ev.shiftKey) {
        // the span from the selected step to this one, both included
        const t = this.state.t;
        this.state.setSpan({ start: Math.min(t, cell.t), stop: Math.max(t, cell.t) + 1 });
        return;
      }
      this.state.select({ t: cell.t, unit: cell.unit });
    });
  }

  _showTip(p, cell, ev) {
    const s = this.state;
    const v = p.series ? p.series.data[cell.t * p.H + cell.unit] : NaN; // by id: the buffer is in unit order
    const tok = showToken(s.trace.tokens[cell.t]);
    this.tip.innerHTML =
      `<b>${MATH[p.gate]}</b> = <span class="num">${fmt(v, 3)}</span><br>` +
      `t = ${cell.t} <span class="tok">${esc(tok)}</span> · unit ${cell.unit}` +
      (p.split ? (cell.unit < p.split ? " (forward)" : ` (backward ${cell.unit - p.split})`) : "");
    this.tip.hidden = false;
    placeTip(this.tip, ev);
  }

  _hideTip() {
    this.tip.hidden = true;
  }

  _schedule() {
    if (this._frame) return;
    this._frame = requestAnimationFrame(() => {
      this._frame = 0;
      this._render();
    });
  }

  _render() {
    const s = this.state;
    const card = s.card;
    if (!card) return;
    const start = performance.now();
    const T = s.trace.T;
    const cellMax = s.trace.cellMax(s.layer);
    if (this._dirty.data) for (const p of this.panels) this._paintFrom.set(p, Math.min(this._paintFrom.get(p) ?? Infinity, this._from));
    this._dirty.data = this._dirty.frame = false;
    this._from = Infinity;
    let framed = false;
    let painted = false;
    let whole = false; // a raster painted many columns this frame (not a keystroke's one or few)
    for (const p of this.panels) {
      const series = s.trace.layers[s.layer]?.[p.gate];
      if (!series) continue;
      if (this._paintFrom.has(p) || p.T !== T) {
        // the rasters within a frame's budget (a long paste's six windows at once were one long task with the
        // frame's plotly call): the rest in the next frames, each at least one
        if (painted && performance.now() - start > PAINT_BUDGET_MS) continue;
        const cols = p.paint(series, T, cellMax, this._paintFrom.get(p) ?? Infinity, this._view());
        this._paintFrom.delete(p);
        painted = true;
        whole ||= cols > WHOLE_COLS;
      }
      // one plotly call a frame (a relayout costs tens of ms), and none in a frame that painted a whole raster (a
      // paste's, a new window's): the panels' frames follow in the next ones
      if (framed || (painted && whole)) this._dirty.frame = true;
      else framed = this._frameOf(p, T, cellMax);
      p.moveCursors(s.t, s.unit);
      p.moveSpan(s.span);
    }
    this._markHeld();
    this._describe();
    if (this._paintFrom.size) this._dirty.frame = true; // rasters still to paint: drawn when they are
    else this.lastDrawn = { version: s.trace.version, at: performance.now() };
    if (this._dirty.frame) this._schedule(); // the frames (or rasters) still to draw
  }

  /** The window shown, or null when the whole text fits. */
  _view() {
    const s = this.state;
    return s.T > s.windowSize ? s.view : null;
  }

  _markHeld() {
    for (const p of this.panels) p.markHeld(this.state.heldRuns, this.state.layer); // what the run shown held
  }

  /** Draw or move the plotly frame of a panel when what it shows changed (T, tokens shown, range); returns
   *  whether plotly was called. */
  _frameOf(p, T, cellMax) {
    const tokens = this.state.trace.tokens;
    const labelled = p.labelled(T);
    const [lo, hi] = p.colourRange(cellMax);
    const frameKey = `${p.width}|${lo}|${hi}|${p.rows ? "rows" : "id"}`;
    const shownTo = Math.min(T, p.a + p.extent(T));
    const axisKey = labelled ? `${p.a}|${shownTo}|${tokens.slice(p.a, shownTo).join("\u0000")}` : `${p.a}|${p.extent(T)}`;
    if (p.drawn && frameKey === p.frameKey && axisKey === p.axisKey) return false;
    if (!hasPlotly()) {
      // the frames follow when plotly.js has loaded; the cells are already drawn
      plotlyReady().then(() => this._schedule(), () => {});
      p.placeRaster();
      return false;
    }
    const fig = p.figure(tokens, T, cellMax, this.state.t, this.state.unit);
    if (!p.drawn) {
      Plotly.newPlot(p.plot, fig.data, fig.layout, CONFIG);
      p.drawn = true;
    } else if (frameKey !== p.frameKey) {
      Plotly.react(p.plot, fig.data, fig.layout, CONFIG);
    } else {
      // only the time axis moved: relayout it alone (a few ms; react would redo the whole chart)
      // only the time axis moved: relayout it alone (react would redo the whole chart); the range alone when the
      // ticks are still step numbers (a window moved)
      const xa = fig.layout.xaxis;
      const upd = { "xaxis.range": xa.range };
      const ticks = `${xa.tickmode}|${xa.nticks}`;
      if (xa.tickmode === "array") Object.assign(upd, { "xaxis.tickmode": xa.tickmode, "xaxis.tickvals": xa.tickvals, "xaxis.ticktext": xa.ticktext, "xaxis.tickfont": xa.tickfont });
      else if (ticks !== p.ticks) Object.assign(upd, { "xaxis.tickmode": xa.tickmode, "xaxis.nticks": xa.nticks, "xaxis.tickfont": xa.tickfont });
      Plotly.relayout(p.plot, upd);
    }
    p.ticks = `${fig.layout.xaxis.tickmode}|${fig.layout.xaxis.nticks}`;
    p.frameKey = frameKey;
    p.axisKey = axisKey;
    p.placeRaster();
    return true;
  }

  _moveCursors() {
    const s = this.state;
    for (const p of this.panels) p.moveCursors(s.t, s.unit);
    this._describe();
  }

  /** Each heatmap's text alternative at the selected step and unit (the values as the store holds them). */
  _describe() {
    const s = this.state;
    const T = s.trace.T;
    const token = T ? `'${showToken(s.trace.tokens[s.t])}'` : "";
    const cellMax = T ? s.trace.cellMax(s.layer) : 1;
    for (const p of this.panels) {
      const series = s.trace.layers[s.layer]?.[p.gate];
      const value = T && series && s.unit < series.width && s.t < series.T ? series.row(s.t)[s.unit] : undefined;
      p.describe(s.t, s.unit, token, value, cellMax);
    }
  }

  async _export(p, format) {
    const s = this.state;
    const T = s.trace.T;
    if (!T) return;
    const cellMax = s.trace.cellMax(s.layer);
    const fig = p.figure(s.trace.tokens, T, cellMax, s.t, s.unit, p.rasterURL());
    const name = slug(`gatescope-${s.model}-layer${s.layer}-${p.gate}-t${s.t}-unit${s.unit}`);
    try {
      await loadPlotly();
      await downloadFigure(fig, format, name, captionOf(s));
    } catch (e) {
      this.hooks.onError?.(`The ${SHORT[p.gate]} heatmap could not be saved: ${e.message}`);
    }
  }
}
