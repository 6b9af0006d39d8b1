/**
 * The chain diagram: colah's "Understanding LSTM Networks" (2015) figure, drawn in SVG for the model's cell
 * type. Three modules in a row: step t open (every layer and op), t−1 and t+1 closed ("A" boxes with their
 * tokens). On the open module each line carries the selected unit's value at t, and each vector line a strip
 * of the whole vector. Grammar (colah's legend): yellow boxes are learned layers, pink circles pointwise ops,
 * a merge is concatenation, a fork (dot) is a copy; the cell state runs along the top.
 *
 * A view like the others: it subscribes to the state. "model" builds the SVG for the new card; "trace",
 * "focus", "t", "unit" and "layer" only rewrite text, attributes and fills (a scrub step stays cheap).
 * Where everything goes, per cell type, is in diagram-geometry.js.
 *
 * A model with a backward direction (bidirectional or reverse): the diagram draws the direction of the
 * selected unit, and a switch (forward / backward) selects the same unit of the other direction. The
 * backward module is mirrored: it reads right to left, its state arrives from step t+1 and leaves to t−1.
 */
import { directionOf, directionsOf, gateWidth, unitsOf } from "./cards.js";
import { SHADES, colourOf, positionOf } from "./colors.js";
import { captionOf, downloadSvg, slug } from "./export.js";
import { setText, showToken } from "./format.js";
import { heldKeys, heldName, heldUnits } from "./hold.js";
import { lutOf } from "./plotting.js";
import {
  GAP, STUB, NEIGHBOUR_MIN, NEIGHBOUR_MAX, NEIGHBOUR_SHARE, MAX_SCALE, OP_R, ELL_RX, ELL_RY, BOX_W, BOX_H,
  TURN, HEAD_L, HEAD_W, IO_R, DOT_R, MODULE_RX, NEIGHBOUR_RX, CASING, SPECS, mirrored,
} from "./diagram-geometry.js";

const NS = "http://www.w3.org/2000/svg";

/** The colour strips of the product lines, from the vectors the view hands over (the lines' numbers come
 *  from the server; the strips only show the whole vector's pattern). */
const STRIP_OF = {
  f_c_prev: [["f", "c_prev"], (a, b) => a * b],
  i_c_tilde: [["i", "c_tilde"], (a, b) => a * b],
  tanh_c: [["c"], Math.tanh],
  one_minus_z: [["z"], (a) => 1 - a],
  r_h_prev: [["r", "h_prev"], (a, b) => a * b],
  one_minus_z_h_prev: [["z", "h_prev"], (a, b) => (1 - a) * b],
  z_h_tilde: [["z", "h_tilde"], (a, b) => a * b],
};

/** Figure space: pads positive numbers to about the width of a minus sign so right-aligned labels stay still. */
const FIGSP = "\u2007";

/** How the token at a step is shown: quoted, with whitespace made visible. */
function quoteToken(tok) {
  if (tok === undefined || tok === null) return "";
  const vis = showToken(tok);
  return `“${vis.length > 8 ? vis.slice(0, 7) + "…" : vis}”`;
}

/** A value as the diagram prints it: 3 decimals below 1, then 2, then 1; a true minus sign. */
function formatValue(v) {
  const a = Math.abs(v);
  let s = a < 1 ? v.toFixed(3) : a < 100 ? v.toFixed(2) : v.toFixed(1);
  if (Number(s) === 0) s = s.replace("-", "");
  return s[0] === "-" ? "−" + s.slice(1) : s;
}

// ---------------------------------------------------------------------------------------------------------
// SVG helpers

/** A new SVG element with attributes, appended to parent if given. */
function el(tag, attrs = {}, parent = null) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

/** Path data for a polyline with rounded turns; `trim` shortens its end (to make room for an arrowhead). */
function pathD(pts, trim = 0) {
  const p = pts.map((q) => q.slice());
  if (trim) {
    const [a, b] = [p[p.length - 2], p[p.length - 1]];
    const l = Math.hypot(b[0] - a[0], b[1] - a[1]);
    b[0] -= ((b[0] - a[0]) / l) * trim;
    b[1] -= ((b[1] - a[1]) / l) * trim;
  }
  let d = `M${p[0][0]},${p[0][1]}`;
  for (let k = 1; k < p.length - 1; k++) {
    const [x0, y0] = p[k - 1];
    const [x1, y1] = p[k];
    const [x2, y2] = p[k + 1];
    const l1 = Math.hypot(x1 - x0, y1 - y0);
    const l2 = Math.hypot(x2 - x1, y2 - y1);
    const r = Math.min(TURN, l1 / 2, l2 / 2);
    d += ` L${x1 - ((x1 - x0) / l1) * r},${y1 - ((y1 - y0) / l1) * r}`;
    d += ` Q${x1},${y1} ${x1 + ((x2 - x1) / l2) * r},${y1 + ((y2 - y1) / l2) * r}`;
  }
  const [xe, ye] = p[p.length - 1];
  return d + ` L${xe},${ye}`;
}

/** An arrowhead polygon whose tip is the polyline's last point. */
function headPoints(pts) {
  const [a, b] = [pts[pts.length - 2], pts[pts.length - 1]];
  const l = Math.hypot(b[0] - a[0], b[1] - a[1]);
  const ux = (b[0] - a[0]) / l;
  const uy = (b[1] - a[1]) / l;
  const bx = b[0] - ux * HEAD_L;
  const by = b[1] - uy * HEAD_L;
  return `${b[0]},${b[1]} ${bx - uy * HEAD_W},${by + ux * HEAD_W} ${bx + uy * HEAD_W},${by - ux * HEAD_W}`;
}

/** Text with an optional italic name and subscript before it: "C_{t−1} 0.532". Returns [pad, value] <tspan>s:
 *  the pad takes a figure space for positive values, so a right-aligned label keeps its place when the sign flips. */
function labelled(parent, attrs, name, sub) {
  const text = el("text", attrs, parent);
  const pad = el("tspan", { class: "dg-pad" }, text);
  if (name) {
    el("tspan", { class: "dg-name" }, text).textContent = name;
    if (sub) {
      el("tspan", { class: "dg-sub", dy: 4 }, text).textContent = sub;
      el("tspan", { dy: -4 }, text).textContent = "\u2009";
    } else {
      text.appendChild(document.createTextNode("\u2009"));
    }
  }
  return [pad, el("tspan", { class: "dg-val" }, text)];
}

/** Most features the x_t strip shows (a cell each). */
const X_STRIP_CELLS = 32;
/** Widest the x_t strip gets, in diagram units. */
const X_STRIP_W = 96;
/** Where the x_t strip starts, right of the start of the x_t label (px); a longer label pushes it further. */
const X_STRIP_GAP = 37;
/** The smallest font size in the diagram, in SVG units (diagram.css: subscripts, tanh, 1−). */
const SMALLEST_TEXT = 13;
/** Screen pixels the smallest diagram text never goes under. */
const MIN_TEXT_PX = 11;

/** The name with its subscript, as the x_t / h_t circles show it. */
function ioLabel(parent, x, y, name, sub) {
  const text = el("text", { x, y: y + 5, class: "dg-io-label" }, parent);
  text.appendChild(document.createTextNode(name));
  el("tspan", { class: "dg-sub", dy: 4 }, text).textContent = sub;
  return text;
}

/** True when the polyline passes through (x, y) (its turns and straight runs; within half a unit). */
function passesThrough(pts, x, y) {
  for (let k = 1; k < pts.length; k++) {
    const [[x0, y0], [x1, y1]] = [pts[k - 1], pts[k]];
    const inX = Math.min(x0, x1) - 0.5 <= x && x <= Math.max(x0, x1) + 0.5;
    const inY = Math.min(y0, y1) - 0.5 <= y && y <= Math.max(y0, y1) + 0.5;
    const cross = (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0);
    if (inX && inY && Math.abs(cross) <= 0.5 * Math.hypot(x1 - x0, y1 - y0)) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------------------

/** What changes redraw the numbers (a new card also rebuilds the SVG). */
const SHOWN = ["model", "trace", "focus", "t", "unit", "layer", "held"];
/** Nothing held. */
const NONE = new Set();

const _ZEROS = new Map();
/** h_{t−1} and C_{t−1} at t = 0: H zeros (one array per size). */
function zeros(H) {
  if (!_ZEROS.has(H)) _ZEROS.set(H, new Float32Array(H));
  return _ZEROS.get(H);
}

/** colah's chain diagram for one cell type, with the selected unit's values on it. */
export class Diagram {
  /**
   * els: {root (an empty element the diagram fills with its own <svg>), tools: {png, svg} (export buttons),
   * direction (an empty element for the forward / backward switch, shown for models with a backward direction),
   * name (prefixes the ids and test ids it makes, default "diagram": a second diagram on the page, side.js)}.
   * hooks: onGate(key | null) on hover, onError(message) when an export fails, onPick(part, element) when a box or
   * op is clicked or Enter / Space is pressed on it (the hold menu, hold.js).
   */
  constructor(els, state, hooks = {}) {
    const root = els.root;
    this._root = root;
    this._name = els.name || "diagram";
    this._state = state;
    this._hooks = hooks;
    this._svg = null;
    this._spec = null;
    this._view = null;
    this._nbWidth = 0;
    this._vbWidth = 0; // the viewBox width last set (_fit)
    this._hovered = null;
    this._external = null;
    this._litKey = null;
    this._lit = [];
    this._tokens = { version: -1, T: -1, list: [] };
    this._resize = new ResizeObserver(() => this._fit());
    this._resize.observe(root);
    for (const [format, btn] of Object.entries(els.tools || {})) btn.addEventListener("click", () => this._export(format));
    this._switch = els.direction || null;
    this._direction = "forward";
    state.subscribe((changed) => this._onChange(changed));
  }

  /**
   * Light from outside: one key's path (a box/op part or a line key), or a step's elements (an array of
   * entries: "k" is the box or op k, the lines and numbers carrying k and, for a learned layer, the input
   * that feeds it; "line:k" only the lines and numbers carrying k); null clears.
   */
  highlight(key) {
    this._external = key;
    if (this._svg && this._hovered === null) this._focus(key);
  }

  _onChange(changed) {
    const s = this._state;
    if (!s.card) return;
    if (changed.has("model") || (changed.has("unit") && directionOf(s.card, s.unit).direction !== this._direction)) {
      this._setModel(s.card);
    }
    if (SHOWN.some((k) => changed.has(k))) this._render(this._viewOf(s));
  }

  /** What the diagram shows at t: exact lines of the unit, every unit's values at t, the C range. */
  _viewOf(s) {
    const { T, t } = s;
    const H = s.card.hidden_size;
    const layer = s.trace.layers[s.layer] || {};
    const vectors = {};
    // the selected unit's direction: its H units of each row; a backward one's previous state is step t+1's
    const { direction, start } = directionOf(s.card, s.unit);
    const part = (row) => (unitsOf(s.card) === H ? row : row.subarray(start, start + H));
    const prev = direction === "backward" ? t + 1 : t - 1;
    if (T) {
      for (const g of s.card.gates) vectors[g] = part(layer[g].row(t));
      vectors.h_prev = prev >= 0 && prev < T ? part(layer.h.row(prev)) : zeros(gateWidth(s.card, "h"));
      if (layer.c) vectors.c_prev = prev >= 0 && prev < T ? part(layer.c.row(prev)) : zeros(H);
    }
    // the token list is copied only when the trace changed (a scrub step stays cheap)
    if (this._tokens.version !== s.trace.version || this._tokens.T !== T) {
      this._tokens = { version: s.trace.version, T, list: s.trace.tokens.slice(0, T) };
    }
    const tokens = this._tokens.list;
    const xRow = T && s.trace.inputs ? s.trace.inputs.rows[t] || null : null; // a series' x_t, as the server read it
    return {
      t, T, tokens, unit: s.unit - start, layer: s.layer, lines: s.currentLines() || {}, vectors, xRow, xMax: this._xMaxOf(s),
      cellMax: s.trace.cellMax(s.layer) || 1, held: T ? heldKeys(s, t) : NONE, heldUnits: T ? heldUnits(s, t) : {},
    };
  }

  /** The largest |x| of the series (the x_t strip's colour scale), once per trace. */
  _xMaxOf(s) {
    const rows = s.trace.inputs?.rows;
    if (!rows) return 1;
    if (this._xMax?.version !== s.trace.version) {
      let m = 0;
      for (let t = 0; t < s.T; t++) for (const v of rows[t]) m = Math.max(m, Math.abs(v));
      this._xMax = { version: s.trace.version, value: m || 1 };
    }
    return this._xMax.value;
  }

  _export(format) {
    const s = this._state;
    if (!this._svg) return;
    downloadSvg(this._svg, format, slug(`gatescope-${s.model}-diagram-t${s.t}-unit${s.unit}`), captionOf(s)).catch((e) =>
      this._hooks.onError?.(`The diagram could not be saved: ${e.message}`),
    );
  }

  /** Draw the structure for a model card {id, cell, gates, hidden_size, layers, input}. */
  _setModel(card) {
    const build = SPECS[card.cell];
    if (!build) throw new Error(`Unknown cell '${card.cell}'`);
    this._card = card;
    this._H = card.hidden_size;
    this._direction = directionOf(card, this._state.unit).direction;
    this._spec = this._direction === "backward" ? mirrored(build(card.cell, card)) : build(card.cell, card);
    this._view = null;
    this._build();
    this._showSwitch(card);
  }

  /** The forward / backward switch: for a model with a backward direction, the direction drawn (pressed)
   *  and, when there are two, a button for the same unit of the other one. */
  _showSwitch(card) {
    const root = this._switch;
    if (!root) return;
    const dirs = directionsOf(card);
    root.hidden = !dirs.includes("backward");
    if (root.hidden) return root.replaceChildren();
    const H = card.hidden_size;
    const label = { forward: "forward →", backward: "← backward" };
    root.replaceChildren(
      ...dirs.map((d, k) => {
        const b = document.createElement("button");
        Object.assign(b, { type: "button", className: "mini dg-dir", textContent: label[d] });
        b.dataset.direction = d;
        b.setAttribute("aria-pressed", String(d === this._direction));
        b.title = d === "forward" ? "Draw the forward direction: reads the text from the start" : "Draw the backward direction: reads the text from the end (its state comes from step t+1)";
        b.disabled = dirs.length === 1;
        b.addEventListener("click", () => this._state.select({ unit: k * H + (this._state.unit % H) }));
        return b;
      }),
    );
  }

  /** Put the numbers on for view {t, tokens, unit, lines, vectors, cellMax}; cheap (text, attributes, fills). */
  _render(view) {
    if (!this._svg) return;
    this._view = view;
    const { t, lines = {}, vectors = {}, unit = 0 } = view;
    const cellMax = view.cellMax || 1;
    for (const n of this._nums) {
      const series = lines[n.key];
      const v = series ? series[t] : undefined;
      const shown = typeof v === "number";
      if (shown !== n.shown) {
        n.shown = shown;
        n.text.style.display = shown ? "" : "none";
        if (shown) {
          n.val.setAttribute("data-gate", n.key);
        } else {
          n.val.removeAttribute("data-gate");
          n.val.removeAttribute("data-value");
          n.last = undefined;
        }
      }
      if (shown && v !== n.last) {
        n.last = v;
        const s = formatValue(v);
        setText(n.val, s);
        n.val.setAttribute("data-value", String(v));
        const padded = n.pad !== null && s[0] !== "−";
        if (padded !== n.padded) {
          n.padded = padded;
          setText(n.pad, padded ? FIGSP : "");
        }
      }
    }
    // same vectors and scale as last time (only the unit or the lines changed): the fills stand
    const fresh = vectors !== this._lastVectors || cellMax !== this._lastCellMax;
    this._lastVectors = vectors;
    this._lastCellMax = cellMax;
    for (const s of this._strips) {
      const vec = lines[s.key] ? this._vector(s.key, vectors) : null;
      if (!!vec !== s.shown) {
        s.shown = !!vec;
        s.g.style.display = vec ? "" : "none";
      }
      if (!vec) {
        s.filled = false;
        continue;
      }
      if (fresh || !s.filled) this._paintStrip(s, vec, cellMax);
      s.filled = true;
      if (unit !== s.unit) {
        s.unit = unit;
        const at = s.start + (unit + 0.5) * s.step;
        s.tick.setAttribute(s.vertical ? "y" : "x", at - s.tickLen / 2);
      }
    }
    this._showTokens();
    this._showX(view);
    this._markHeld(view);
  }

  /** Mark in amber what was held by hand at t (hold.js reads the server's word on it): the selected unit's held
   *  parts and numbers (their names say "held"), and every held unit's cell on its gate's strip. */
  _markHeld(view) {
    const keys = view.held || NONE;
    const units = view.heldUnits || {};
    const id = `${[...keys].join()}|${Object.entries(units).map(([g, us]) => `${g}:${[...us].join(".")}`).join()}`;
    if (id === this._heldId) return;
    this._heldId = id;
    for (const [part, p] of this._parts) {
      const on = keys.has(part);
      p.e.classList.toggle("dg-held", on);
      p.e.setAttribute("aria-label", heldName(p.title, on));
    }
    for (const n of this._nums) n.text.classList.toggle("dg-held", keys.has(n.key));
    for (const s of this._strips) {
      s.held?.remove();
      s.held = null;
      const us = units[s.key];
      if (!us) continue;
      s.held = el("g", { class: "dg-held-cells", "data-testid": "diagram-held-cells" }, s.g);
      for (const u of us) {
        const a = s.start + u * s.step;
        const len = Math.max(s.step, 1.5);
        el("rect", s.vertical ? { x: s.x - 2, y: a, width: s.w + 4, height: len } : { x: a, y: s.y - 2, width: len, height: s.h + 4 }, s.held);
      }
    }
    this._svg.dataset.held = [...keys].join(" ");
  }

  /** Colour the x_t strip of a series model with step t's input vector (cell scale, up to the series' largest |x|). */
  _showX(view) {
    if (!this._xStrip) return;
    const row = view.xRow;
    this._xStrip.g.style.display = row ? "" : "none";
    if (!row) return;
    this._xStrip.cells.forEach((cell, d) => {
      cell.setAttribute("fill", colourOf("c", row[d], view.xMax));
      cell.setAttribute("data-value", String(row[d]));
    });
  }

  // -------------------------------------------------------------------------------------------------------

  /** Paint a strip's H cells into its one canvas: H pixels long, one pixel a unit, put in place (putImageData) and
   *  stretched over the strip. An <image> with a BMP data URL (before) cost every step a resource load and a decode
   *  a strip (~2 ms CPU for the diagram's 11); H <rect>s each cost style and paint. Skipped when no cell changed
   *  colour. */
  _paintStrip(s, vec, cellMax) {
    const lut = lutOf(s.key);
    const H = s.px.length;
    const top = SHADES - 1;
    let same = true;
    for (let u = 0; u < H; u++) {
      const c = lut[Math.round(positionOf(s.key, u < vec.length ? vec[u] : 0, cellMax) * top)];
      if (c !== s.px[u]) {
        s.px[u] = c;
        same = false;
      }
    }
    if (same && s.painted) return;
    s.painted = true;
    s.ctx ??= s.image.getContext("2d");
    // the lookup's entries are r, g, b, a bytes: the pixels as they are
    s.ctx.putImageData(new ImageData(new Uint8ClampedArray(s.px.buffer), s.vertical ? 1 : H, s.vertical ? H : 1), 0, 0);
  }

  /** A strip's vector: handed over by the view, or, for a product line, the pointwise product of ones
   *  that are. Colour only: every number shown comes from the server. */
  _vector(key, vectors) {
    if (vectors[key]) return vectors[key];
    const d = STRIP_OF[key];
    const args = d ? d[0].map((k) => vectors[k]) : [];
    if (!d || args.some((a) => !a)) return null;
    const out = (this._scratch[key] ||= new Float32Array(args[0].length));
    const [fn, a, b] = [d[1], args[0], args[1]];
    if (b) for (let u = 0; u < out.length; u++) out[u] = fn(a[u], b[u]);
    else for (let u = 0; u < out.length; u++) out[u] = fn(a[u]);
    return out;
  }

  _build() {
    const spec = this._spec;
    if (this._hovered !== null) this._hooks.onGate?.(null); // the hovered part is about to go
    const back = this._direction === "backward";
    const svg = el("svg", {
      class: "dg", "data-cell": this._card.cell, "data-direction": this._direction, role: "group",
      "aria-label": `${this._card.cell} chain diagram${back ? ", backward direction (reads right to left, from step t+1)" : ""}: step t open, its neighbours closed`,
    });
    this._svg = svg;
    this._members = new Map();
    this._nums = [];
    this._strips = [];
    this._lit = [];
    this._litKey = null;
    this._hovered = null;
    this._lastVectors = null;
    this._heldId = null;
    this._scratch = {};
    const join = (e, parts) => {
      e.classList.add("dg-f");
      for (const p of parts) {
        if (!this._members.has(p)) this._members.set(p, []);
        this._members.get(p).push(e);
      }
    };
    const partsOfKey = (key) => [...new Set(spec.lines.filter((l) => l.key === key).flatMap((l) => [...l.parts, key]))];

    this._nbPrev = el("g", { class: "dg-nb dg-f" }, svg);
    this._nbNext = el("g", { class: "dg-nb dg-f" }, svg);
    el("rect", { class: "dg-module", x: 0, y: spec.top, width: spec.w, height: spec.bottom - spec.top, rx: MODULE_RX }, svg);

    const gLines = el("g", { class: "dg-lines" }, svg);
    const ordered = [...spec.lines].sort((a, b) => a.over.length - b.over.length);
    // what a step lights: the part elements, what carries each key, the input bus (a concatenation, key null)
    this._parts = new Map();
    this._keyed = new Map();
    this._bus = [];
    /** e carries key's value; `parts`: the parts a line leads to or from (null: a number, strip or circle). */
    const carry = (key, e, parts = null) => {
      if (!this._keyed.has(key)) this._keyed.set(key, []);
      this._keyed.get(key).push({ e, parts });
    };
    const lineEls = [];
    for (const ln of ordered) {
      const g = el("g", { class: "dg-ln", "data-key": ln.key ?? "xh" }, gLines);
      lineEls.push([ln, g]);
      if (ln.key) carry(ln.key, g, ln.parts);
      else this._bus.push({ g, parts: ln.parts });
      for (const [x, y, dir] of ln.over) {
        const d = dir === "v" ? `M${x},${y - CASING} L${x},${y + CASING}` : `M${x - CASING},${y} L${x + CASING},${y}`;
        el("path", { class: "dg-casing", d }, g);
      }
      el("path", { d: pathD(ln.pts, ln.arrow ? HEAD_L - 1 : 0) }, g);
      if (ln.arrow) el("polygon", { class: "dg-head", points: headPoints(ln.pts) }, g);
      // lines carrying a key also light when that key is highlighted from outside
      join(g, ln.key ? [...ln.parts, `line:${ln.key}`] : ln.parts);
    }
    // a fork dot lights with any line through it
    this._dots = spec.dots.map((d) => {
      const e = el("circle", { class: "dg-dot", cx: d.x, cy: d.y, r: DOT_R }, svg);
      join(e, d.parts);
      return { e, through: lineEls.filter(([ln]) => passesThrough(ln.pts, d.x, d.y)).map(([, g]) => g) };
    });

    const gStrips = el("g", { class: "dg-strips" }, svg);
    for (const s of spec.strips) {
      this._strips.push(this._makeStrip(gStrips, s, partsOfKey(s.key), join));
      carry(s.key, this._strips[this._strips.length - 1].g);
    }

    for (const b of spec.boxes) {
      const g = el("g", { class: "dg-part dg-box", "data-part": b.part }, svg);
      el("title", {}, g).textContent = b.title;
      const bw = b.label === "tanh" ? BOX_W + 8 : BOX_W;
      el("rect", { x: b.x - bw / 2, y: b.y, width: bw, height: BOX_H, rx: 2 }, g);
      const cls = b.label === "tanh" ? "dg-sym dg-sym-tanh" : "dg-sym";
      el("text", { class: cls, x: b.x, y: b.y + BOX_H / 2 }, g).textContent = b.label;
      this._hoverable(g, b.part, b.title);
      join(g, [b.part]);
      this._parts.set(b.part, { e: g, layer: true, title: b.title });
    }
    for (const o of spec.ops) {
      const g = el("g", { class: `dg-part dg-op dg-op-${o.kind}`, "data-part": o.part }, svg);
      el("title", {}, g).textContent = o.title;
      el("circle", { class: "dg-hit", cx: o.x, cy: o.y, r: OP_R + 6 }, g);
      if (o.kind === "tanh" || o.kind === "one") el("ellipse", { cx: o.x, cy: o.y, rx: ELL_RX, ry: ELL_RY }, g);
      else el("circle", { cx: o.x, cy: o.y, r: OP_R }, g);
      const sym = { mul: "×", add: "+", tanh: "tanh", one: "1−" }[o.kind];
      el("text", { class: `dg-sym dg-sym-${o.kind}`, x: o.x, y: o.y }, g).textContent = sym;
      this._hoverable(g, o.part, o.title);
      join(g, [o.part]);
      this._parts.set(o.part, { e: g, layer: false, title: o.title });
    }

    const gNums = el("g", { class: "dg-nums" }, svg);
    for (const n of spec.nums) {
      const [pad, val] = labelled(gNums, { x: n.x, y: n.y, "text-anchor": n.anchor, class: "dg-num" }, n.name, n.sub);
      const text = val.parentNode;
      join(text, [...partsOfKey(n.key), `line:${n.key}`]);
      carry(n.key, text);
      text.style.display = "none"; // until update() has a value for it
      this._nums.push({ key: n.key, text, val, pad: n.anchor === "end" ? pad : null, padded: false, shown: false, last: undefined });
    }

    // x_t entering below, h_t leaving above
    const xParts = [...new Set(spec.lines.filter((l) => l.key === null && l.pts[0][1] === spec.xIn.y - IO_R).flatMap((l) => l.parts))];
    const gx = el("g", { class: "dg-io dg-x" }, svg);
    el("circle", { cx: spec.xIn.x, cy: spec.xIn.y, r: IO_R }, gx);
    ioLabel(gx, spec.xIn.x - 7, spec.xIn.y, "x", "t");
    this._xToken = el("text", { class: "dg-token", x: spec.xIn.x + IO_R + 7, y: spec.xIn.y + 5 }, gx);
    this._xStrip = this._card.input === "vectors" ? this._makeXStrip(gx, spec.xIn.x + IO_R + 7 + X_STRIP_GAP, spec.xIn.y - 6) : null;
    join(gx, xParts);
    this._xIo = gx;
    const gh = el("g", { class: "dg-io dg-h" }, svg);
    el("circle", { cx: spec.hOut.x, cy: spec.hOut.y, r: IO_R }, gh);
    ioLabel(gh, spec.hOut.x - 7, spec.hOut.y, "h", "t");
    join(gh, ["h", "line:h"]);
    carry("h", gh);

    // the explanation of the hovered or focused box (keyboard users tab to it; Escape leaves)
    this._explain = document.createElement("p");
    Object.assign(this._explain, { className: "dg-explain", id: `${this._name}-explain` });
    this._explain.dataset.testid = `${this._name}-explain`;
    this._explain.setAttribute("aria-live", "polite");
    this._explainAbout(null);
    this._root.replaceChildren(svg, this._explain);
    this._nbWidth = 0;
    this._fit(true);
    this._focus(this._external);
  }

  /** The x_t strip of a series model: a cell a feature (at most X_STRIP_CELLS), right of the x_t circle. */
  _makeXStrip(parent, x, y) {
    const D = Math.min(this._card.input_size || 1, X_STRIP_CELLS);
    const w = Math.max(6, Math.min(14, X_STRIP_W / D));
    const g = el("g", { class: "dg-strip dg-x-strip", "data-strip": "x", "data-testid": this._name === "diagram" ? "x-strip" : `${this._name}-x-strip` }, parent);
    const cells = Array.from({ length: D }, (_, d) => el("rect", { x: x + d * w, y, width: w, height: 12 }, g));
    el("rect", { class: "dg-strip-frame", x, y, width: w * D, height: 12 }, g);
    return { g, cells };
  }

  _makeStrip(parent, s, parts, join) {
    const H = this._H;
    const g = el("g", { class: "dg-strip", "data-strip": s.key }, parent);
    const len = s.vertical ? s.h : s.w;
    const step = len / H;
    // one canvas, a pixel a unit, stretched over the strip (pixelated: each unit a solid cell); an export turns it
    // into an <image> (export.js standaloneSvg)
    const fo = el("foreignObject", { x: s.x, y: s.y, width: s.w, height: s.h }, g);
    const image = document.createElement("canvas");
    image.className = "dg-strip-img";
    image.width = s.vertical ? 1 : H;
    image.height = s.vertical ? H : 1;
    fo.append(image);
    el("rect", { class: "dg-strip-frame", x: s.x, y: s.y, width: s.w, height: s.h }, g);
    const tickLen = Math.max(step, 1.2);
    // an outline across the strip marks the selected unit's cell
    const tick = el(
      "rect",
      s.vertical
        ? { class: "dg-tick", x: s.x - 1.5, y: s.y, width: s.w + 3, height: tickLen }
        : { class: "dg-tick", x: s.x, y: s.y - 1.5, width: tickLen, height: s.h + 3 },
      g,
    );
    join(g, [...parts, `line:${s.key}`]);
    return {
      key: s.key, g, image, px: new Uint32Array(H), painted: false, tick, tickLen, step, vertical: s.vertical,
      x: s.x, y: s.y, w: s.w, h: s.h, held: null,
      start: s.vertical ? s.y : s.x, unit: -1, shown: true, filled: false,
    };
  }

  /** A box or op: hovering or focusing it (Tab) lights its path, says its equation, and tells the hooks. */
  _hoverable(g, part, title) {
    g.setAttribute("tabindex", "0");
    g.setAttribute("role", "button");
    g.setAttribute("aria-label", title);
    g.setAttribute("aria-describedby", `${this._name}-explain`);
    const enter = () => {
      this._hovered = part;
      this._focus(part);
      this._explainAbout(title);
      this._hooks.onGate?.(part);
    };
    const leave = () => {
      if (this._hovered !== part) return;
      this._hovered = null;
      this._focus(this._external);
      this._explainAbout(null);
      this._hooks.onGate?.(null);
    };
    g.addEventListener("pointerenter", enter);
    g.addEventListener("pointerleave", () => document.activeElement !== g && leave());
    g.addEventListener("focus", enter);
    g.addEventListener("blur", leave);
    g.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") g.blur();
      else if (ev.key === "Enter" || ev.key === " ") {
        ev.preventDefault();
        ev.stopPropagation(); // a button's key: not the page's Space (play)
        this._hooks.onPick?.(part, g);
      }
    });
    g.addEventListener("click", () => this._hooks.onPick?.(part, g));
  }

  /** The line under the diagram: the hovered or focused part's equation, else how to get one. */
  _explainAbout(title) {
    if (!this._explain) return;
    this._explain.classList.toggle("dg-explain-idle", !title);
    this._explain.textContent = title || "Hover or Tab to a yellow box or pink circle for its equation (Escape leaves).";
  }

  /** Light a part's path (or, for a key with no part, the line carrying it; or a step's elements) and fade the rest. */
  _focus(key) {
    const id = Array.isArray(key) ? key.join(",") : key;
    if (id === this._litKey) return;
    for (const e of this._lit) e.classList.remove("dg-lit");
    this._litKey = id;
    if (Array.isArray(key)) this._lit = this._stepElements(key);
    else this._lit = (key && (this._members.get(key) || this._members.get(`line:${key}`))) || [];
    for (const e of this._lit) e.classList.add("dg-lit");
    this._svg.classList.toggle("dg-focusing", this._lit.length > 0);
  }

  /** The elements a step lights (entries as in highlight()): its parts, the numbers and strips of its keys and
   *  the lines carrying them that lead to or from one of its own entries (C_{t−1}'s peephole into i is not the
   *  forget step's), the bus feeding a learned layer, x_t when the bus is lit, and every fork dot a lit line
   *  passes through. */
  _stepElements(entries) {
    const lit = new Set();
    const own = new Set(entries.filter((k) => !k.startsWith("line:")));
    for (const entry of entries) {
      const lineOnly = entry.startsWith("line:");
      const key = lineOnly ? entry.slice(5) : entry;
      const part = lineOnly ? null : this._parts.get(key);
      if (part) lit.add(part.e);
      for (const { e, parts } of this._keyed.get(key) || []) if (!parts || parts.some((p) => own.has(p))) lit.add(e);
      if (part?.layer) for (const b of this._bus) if (b.parts.includes(key)) lit.add(b.g);
    }
    if (this._bus.some((b) => lit.has(b.g))) lit.add(this._xIo);
    for (const d of this._dots) if (d.through.some((g) => lit.has(g))) lit.add(d.e);
    return [...lit];
  }

  /** Size the closed neighbours to the page width and set the viewBox (on build and on resize only). */
  _fit(force = false) {
    const spec = this._spec;
    if (!spec || !this._svg) return;
    const px = this._root.clientWidth || 1000;
    const ideal = (px - spec.w) / 2 - GAP - STUB;
    const widest = Math.min(NEIGHBOUR_MAX, spec.w * NEIGHBOUR_SHARE);
    const nb = Math.round(Math.max(NEIGHBOUR_MIN, Math.min(widest, ideal)) / 4) * 4;
    const width = Math.max(spec.w + 2 * (GAP + nb + STUB), px / MAX_SCALE);
    // the viewBox follows the page past the widest neighbours too (else the drawing outgrows MAX_SCALE)
    if (nb === this._nbWidth && width === this._vbWidth && !force) return;
    this._nbWidth = nb;
    this._vbWidth = width;
    this._svg.setAttribute("viewBox", `${(spec.w - width) / 2} 0 ${width} ${spec.height}`);
    // never drawn so small that its smallest text is under MIN_TEXT_PX on screen: a narrow page scrolls the
    // diagram sideways inside its panel, centred on the open module. The floor is the cell's narrowest drawing (the
    // neighbours at their narrowest), the same at every page width: a layout can read it as the diagram's
    // min-content width (side.css puts run b under run a when the two floors do not fit side by side)
    const narrowest = spec.w + 2 * (GAP + Math.round(NEIGHBOUR_MIN / 4) * 4 + STUB);
    this._svg.style.minWidth = `${Math.ceil((narrowest * MIN_TEXT_PX) / SMALLEST_TEXT)}px`;
    // and never so short: a panel that caps the diagram's height (presentation mode) would shrink it by height
    this._svg.style.minHeight = `${Math.ceil((spec.height * MIN_TEXT_PX) / SMALLEST_TEXT)}px`;
    if (this._root.scrollWidth > this._root.clientWidth) this._root.scrollLeft = (this._root.scrollWidth - this._root.clientWidth) / 2;
    this._drawNeighbour(this._nbPrev, -GAP - nb, nb, "prev");
    this._drawNeighbour(this._nbNext, spec.w + GAP, nb, "next");
    this._showTokens();
  }

  _drawNeighbour(g, x, nb, side) {
    const spec = this._spec;
    g.replaceChildren();
    const cx = x + nb / 2;
    const outer = side === "prev" ? x - STUB : x + nb + STUB;
    const inner = side === "prev" ? x : x + nb;
    // the state runs left to right (t−1 → t → t+1), or right to left in a backward direction's chain
    const intoPrev = side === "prev" ? !spec.mirrored : spec.mirrored;
    for (const y of spec.states) {
      const pts = intoPrev ? [[outer, y], [inner, y]] : [[inner, y], [outer, y]];
      el("path", { class: "dg-nb-line", d: pathD(pts, HEAD_L - 1) }, g);
      el("polygon", { class: "dg-nb-head", points: headPoints(pts) }, g);
    }
    el("path", { class: "dg-nb-line", d: `M${cx},${spec.xIn.y - 8} L${cx},${spec.nbBottom}` }, g);
    el("rect", { class: "dg-nb-box", x, y: spec.nbTop, width: nb, height: spec.nbBottom - spec.nbTop, rx: NEIGHBOUR_RX }, g);
    el("text", { class: "dg-nb-a", x: cx, y: (spec.nbTop + spec.nbBottom) / 2 }, g).textContent = "A";
    const tok = el("text", { class: "dg-nb-token", x: cx, y: spec.xIn.y + 9 }, g);
    if (side === "prev") this._prevToken = tok;
    else this._nextToken = tok;
  }

  _showTokens() {
    const v = this._view;
    if (!v || !this._xToken) return;
    const tokens = v.tokens || [];
    const t = v.t;
    const set = setText;
    set(this._xToken, quoteToken(tokens[t]));
    if (this._xStrip) {
      // a series step's label is its values: the strip moves right of however long it is (it starts 37 px on)
      const shift = Math.max(0, this._xToken.getComputedTextLength() + 4 - X_STRIP_GAP);
      this._xStrip.g.setAttribute("transform", `translate(${shift.toFixed(1)},0)`);
    }
    const hasPrev = t > 0;
    const hasNext = t + 1 < tokens.length;
    this._nbPrev.classList.toggle("dg-absent", !hasPrev);
    this._nbNext.classList.toggle("dg-absent", !hasNext);
    set(this._prevToken, hasPrev ? quoteToken(tokens[t - 1]) : "");
    set(this._nextToken, hasNext ? quoteToken(tokens[t + 1]) : "");
  }
}
