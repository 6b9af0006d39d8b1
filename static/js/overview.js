/**
 * The overview of a long text: one strip of the whole text (the selected unit's value of state.gate at every
 * step, in the heatmaps' colours), the window the heatmaps and curves show as a box on it, and t as a line.
 * Click the strip to centre the window there, drag the box to move it, − / + to zoom out / in (around t),
 * "whole text" to show every step. The window itself lives in state.js (state.view, state.windowSize).
 *
 * Change costs: "t" and "window" move two boxes; "trace", "unit", "layer" and "gate" repaint the strip (one
 * value a pixel column, at most STRIP_COLS of them) in the next animation frame.
 */

import { SHADES, positionOf } from "./colors.js";
import { SHORT, el } from "./format.js";
import { lutOf } from "./plotting.js";
import { MIN_WINDOW } from "./state.js";

/** Columns the strip's canvas paints at most (it is stretched to the strip's width). */
const STRIP_COLS = 2048;
/** How much − and + zoom (the window's steps are multiplied or divided by it). */
const ZOOM = 2;

/** Whole numbers with thousands separators ("20,000"). */
const num = (n) => n.toLocaleString("en-US");

export class Overview {
  /** root: the overview's <section> (hidden while the text is short). */
  constructor(root, state) {
    this.root = root;
    this.state = state;
    this._frame = 0;
    this.canvas = el("canvas", { class: "ov-strip", "aria-hidden": "true", height: 1 });
    this.box = el("div", { class: "ov-box", "data-testid": "overview-window", title: "The steps the heatmaps and curves show: drag to move" });
    this.cursor = el("div", { class: "ov-t" });
    this.track = el("div", { class: "ov-track", "data-testid": "overview-strip" }, this.canvas, this.box, this.cursor);
    this.label = el("span", { class: "ov-label", "data-testid": "overview-label", "aria-live": "polite" });
    this.out = el("button", { type: "button", class: "mini", text: "−", "data-testid": "zoom-out", title: "Show more steps (zoom out)", "aria-label": "Zoom out" });
    this.in = el("button", { type: "button", class: "mini", text: "+", "data-testid": "zoom-in", title: "Show fewer steps, wider (zoom in)", "aria-label": "Zoom in" });
    this.all = el("button", { type: "button", class: "mini", text: "whole text", "data-testid": "zoom-all", title: "Show every step at once" });
    this.head = el("div", { class: "ov-head" }, el("span", { class: "ov-title", text: "Overview" }), this.label, el("span", { class: "ov-tools" }, this.out, this.in, this.all));
    root.append(this.head, this.track);
    this.out.addEventListener("click", () => this._zoom(state.windowSize * ZOOM));
    this.in.addEventListener("click", () => this._zoom(Math.min(state.windowSize, state.T) / ZOOM));
    this.all.addEventListener("click", () => this._zoom(state.T));
    this._wireDrag();
    state.subscribe((changed) => this._onChange(changed));
  }

  _onChange(changed) {
    if (["trace", "unit", "layer", "gate", "model"].some((k) => changed.has(k))) this._schedule();
    if (["t", "window", "trace", "model"].some((k) => changed.has(k))) this._place();
  }

  /** Zoom to `size` steps, keeping t where it is in the window (or centred when it was outside). */
  _zoom(size) {
    const s = this.state;
    const v = s.view;
    const inside = s.t >= v.start && s.t < v.stop;
    const share = inside && v.stop > v.start ? (s.t - v.start) / (v.stop - v.start) : 0.5;
    const n = Math.max(MIN_WINDOW, Math.min(Math.round(size), s.T));
    s.setWindow(s.t - Math.round(share * n), n);
  }

  /** Steps at a client x on the strip. */
  _stepAtX(clientX) {
    const box = this.track.getBoundingClientRect();
    return ((clientX - box.left) / (box.width || 1)) * this.state.T;
  }

  _wireDrag() {
    let grab = null; // where in the window the pointer holds it (steps), while dragging
    this.track.addEventListener("pointerdown", (ev) => {
      const s = this.state;
      if (!s.T) return;
      const at = this._stepAtX(ev.clientX);
      const v = s.view;
      const n = v.stop - v.start;
      // on the box: drag it from where it is held; elsewhere: centre the window there, then drag
      grab = at >= v.start && at < v.stop ? at - v.start : n / 2;
      s.setWindow(at - grab);
      this.track.setPointerCapture(ev.pointerId);
      ev.preventDefault();
    });
    this.track.addEventListener("pointermove", (ev) => {
      if (grab === null) return;
      this.state.setWindow(this._stepAtX(ev.clientX) - grab);
    });
    const drop = () => (grab = null);
    this.track.addEventListener("pointerup", drop);
    this.track.addEventListener("pointercancel", drop);
  }

  _schedule() {
    if (this._frame) return;
    this._frame = requestAnimationFrame(() => {
      this._frame = 0;
      this._paint();
    });
  }

  /** Paint the strip: the selected unit's value of state.gate at one step a column. */
  _paint() {
    const s = this.state;
    const T = s.T;
    const gate = s.card?.gates.includes(s.gate) ? s.gate : s.card?.gates.at(-1);
    const series = gate ? s.trace.layers[s.layer]?.[gate] : null;
    if (!T || !series) return;
    const cols = Math.min(T, STRIP_COLS);
    if (this.canvas.width !== cols) this.canvas.width = cols;
    const ctx = this.canvas.getContext("2d");
    const img = ctx.createImageData(cols, 1);
    const px = new Uint32Array(img.data.buffer);
    const lut = lutOf(gate);
    const H = series.width;
    const u = Math.min(s.unit, H - 1);
    const cellMax = s.trace.cellMax(s.layer) || 1;
    for (let c = 0; c < cols; c++) {
      const t = Math.min(T - 1, Math.floor(((c + 0.5) * T) / cols));
      const v = series.data[t * H + u];
      px[c] = lut[Math.round(positionOf(gate, v, cellMax) * (SHADES - 1))];
    }
    ctx.putImageData(img, 0, 0);
    this.track.title = `The whole text: unit ${s.unit}'s ${SHORT[gate] || gate} at each step. Click to show the steps there.`;
  }

  /** Place the window's box and t's line; show the overview only when the text is long enough to need it. */
  _place() {
    const s = this.state;
    const T = s.T;
    const hidden = T <= MIN_WINDOW;
    if (this.root.hidden !== hidden) this.root.hidden = hidden;
    if (hidden) return;
    this.cursor.style.left = `${(100 * (s.t + 0.5)) / T}%`;
    const v = s.view;
    const stop = Math.min(v.stop, T);
    const key = `${v.start}|${stop}|${T}|${s.windowSize}`;
    if (key === this._key) return; // a step inside the window moves t's line only
    this._key = key;
    this.box.style.left = `${(100 * v.start) / T}%`;
    this.box.style.width = `${(100 * (stop - v.start)) / T}%`;
    this.root.dataset.start = String(v.start);
    this.root.dataset.stop = String(stop);
    const whole = v.start === 0 && stop >= T;
    this.label.textContent = whole ? `all ${num(T)} steps shown` : `steps ${num(v.start + 1)}–${num(stop)} of ${num(T)} shown`;
    this.in.disabled = Math.min(s.windowSize, T) <= MIN_WINDOW;
    this.out.disabled = this.all.disabled = whole;
  }
}
