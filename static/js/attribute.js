/**
 * What the prediction at step t depends on: the text up to t coloured by each input's contribution (gradient × input,
 * or integrated gradients), and the curve of ‖∂ score_t / ∂C_s‖ over s — the gradient flowing back through the cell
 * state (h_s for GRU and RNN), colah's long-term dependency made visible. The server computes both by exact
 * backpropagation through time (POST /api/attribute, model/attribution.py; it keeps the text's forward pass, so a
 * scrubbed step costs one backward pass); this view draws them, for the step the scrubber is at.
 *
 * Change costs: "t" waits until the panel is on screen, then for an idle moment (lazy.js: a scrub with the panel
 * below the fold asks nothing); then it shows the new step at once if it was asked for ahead (while the user scrubs, the next step in
 * the scrub's direction is asked for as soon as a step is drawn: a small cache of the last CACHE_STEPS answers),
 * else asks for it (an answer that arrives for a step no longer shown is kept, not drawn); "trace", "layer" and
 * the method empty the cache and ask again after SETTLE_MS.
 *
 * A model's first gradient × input may wait on the server compiling its cell's kernels (app/warm.py: on a fresh
 * install, seconds): until one attribution of the model has arrived, the view asks the server whether it is
 * compiling (GET /api/models/{id}/attribution) beside its first request, and says so while that request waits.
 */

import { attribute, attributionKernels } from "./api.js";
import { colourOf, darkTextOn } from "./colors.js";
import { el, fmt, showToken } from "./format.js";
import { Lazy } from "./lazy.js";

/** A share (0..1) as a percentage: one decimal from 0.1% up, else two significant digits in e-notation (a plain
 *  RNN's first input can hold 1e-17 % of an answer: small is not zero). */
function percent(x) {
  const p = 100 * x;
  if (p === 0) return "0%";
  return p >= 0.1 ? `${p.toFixed(1)}%` : `${p.toExponential(1)}%`;
}

const SETTLE_MS = 300;
/** Steps before t whose tokens the text shows at most, and the most steps drawn as dots (a long text: the
 *  line alone), so a 20,000-step text costs what a short one does. */
const SHOWN_STEPS = 400;
/** Integrated gradients' points (the server's default). */
const IG_STEPS = 32;
/** Answers kept for steps already asked for (the oldest out first): a scrub back and forth finds them ready. */
const CACHE_STEPS = 16;

export class AttributeView {
  /** nodes: {root, method, status, text, curve}. */
  constructor(nodes, state) {
    this.nodes = nodes;
    this.state = state;
    this.data = null;
    this._timer = 0;
    this._lazy = new Lazy(nodes.root);
    /** key (method, layer, t) -> {promise, ctl, data}: answers asked for, in the order asked. */
    this._cache = new Map();
    this._shown = -1; // the step last drawn, for the scrub's direction
    this._wanted = null; // the key of the step to draw
    this._warm = new Set(); // models an attribution has arrived for: their kernels are loaded, nothing to ask
    nodes.method.append(new Option("gradient × input", "grad_x_input"), new Option(`integrated gradients (${IG_STEPS} points)`, "integrated_gradients"));
    nodes.method.addEventListener("change", () => {
      this._forget();
      this._ask();
    });
    state.subscribe((changed) => this._onChange(changed));
    new ResizeObserver(() => this.data && this._curve()).observe(nodes.curve);
  }

  _onChange(changed) {
    const s = this.state;
    if (changed.has("model")) {
      // what the server backpropagates: a forward network with a head, not projected (proj_size), over typed text
      const c = s.card;
      const usable = c?.head && c.direction === "forward" && !c.proj_size && c.input !== "vectors";
      this.nodes.root.hidden = !usable;
      this._clear("");
    }
    if (changed.has("t") && !changed.has("trace")) return this._lazy.run(() => this._ask());
    if (["trace", "layer", "model"].some((k) => changed.has(k))) {
      this._forget();
      clearTimeout(this._timer);
      this._timer = setTimeout(() => this._ask(), SETTLE_MS);
    }
  }

  /** Empty the cache (the text, the layer, the model or the method changed), aborting what is still asked. */
  _forget() {
    for (const entry of this._cache.values()) if (!entry.data) entry.ctl.abort();
    this._cache.clear();
    this._shown = -1;
    this._wanted = null;
  }

  _clear(note) {
    this._forget();
    this.nodes.curve.replaceChildren();
    this.data = null;
    this.nodes.text.replaceChildren();
    this.nodes.status.textContent = note;
    this.nodes.root.dataset.t = "";
  }

  /** The request body for step t, or null while nothing can be attributed. */
  _body(t) {
    const s = this.state;
    if (this.nodes.root.hidden || !s.tracedText || !s.T || t < 0 || t >= s.T) return null;
    const method = this.nodes.method.value;
    const body = { model: s.model, text: s.tracedText, t, method, layer: s.layer };
    if (method === "integrated_gradients") body.steps = IG_STEPS;
    return body;
  }

  /** The cache entry of `body`'s step, asked for now if it is not there yet (the oldest entry out beyond CACHE_STEPS). */
  _entry(body) {
    const key = `${body.method}|${body.layer}|${body.t}`;
    let entry = this._cache.get(key);
    if (entry) {
      this._cache.delete(key); // the most recently used goes last
      this._cache.set(key, entry);
      return [key, entry];
    }
    const ctl = new AbortController();
    entry = { ctl, data: null, promise: null };
    entry.promise = attribute(body, ctl.signal).then(
      (out) => (entry.data = out),
      (e) => {
        if (this._cache.get(key) === entry) this._cache.delete(key); // a failure is not kept: asking again may work
        throw e;
      },
    );
    entry.promise.catch(() => {}); // a step asked for ahead and never shown fails quietly
    this._cache.set(key, entry);
    for (const [k, old] of this._cache) {
      if (this._cache.size <= CACHE_STEPS) break;
      if (!old.data) old.ctl.abort();
      this._cache.delete(k);
    }
    return [key, entry];
  }

  async _ask() {
    const s = this.state;
    clearTimeout(this._timer);
    this._lazy.cancel(); // this answer is the newest
    const t = Math.min(s.t, s.T - 1);
    const body = this._body(t);
    if (!body) return;
    const [key, entry] = this._entry(body);
    this._wanted = key;
    if (!entry.data && body.method === "grad_x_input" && !this._warm.has(body.model)) this._compiling(body.model, key, entry);
    try {
      const out = entry.data ?? (await entry.promise);
      this._warm.add(body.model);
      if (this._wanted !== key) return; // the scrubber moved on meanwhile
      const step = this._shown >= 0 && t < this._shown ? -1 : 1;
      this.data = out;
      this._text();
      this._curve();
      this._say();
      this.nodes.root.dataset.t = String(out.t);
      this._shown = t;
      const next = body.method === "grad_x_input" ? this._body(t + step) : null; // integrated gradients cost 34 passes
      if (next) this._entry(next); // the next scrub step's answer, asked for ahead
    } catch (e) {
      if (e.name === "AbortError" || this._wanted !== key) return;
      this._clear(`Not attributed: ${e.message}`);
    }
  }

  /** Ask the server whether `model`'s kernels are being compiled, and say so while `entry` (the step `key`) waits. */
  async _compiling(model, key, entry) {
    let k;
    try {
      k = await attributionKernels(model, entry.ctl.signal);
    } catch {
      return; // the attribution's own answer says what went wrong, if anything did
    }
    if (k.kernels === "ready" || entry.data || this._wanted !== key || this.state.model !== model) return;
    this.nodes.status.textContent = `Preparing the gradient code for the ${k.cell || "model's"} cell, first use only…`;
    this.nodes.root.dataset.compiling = "true";
    entry.promise.finally(() => delete this.nodes.root.dataset.compiling).catch(() => {});
  }

  _say() {
    const d = this.data;
    const target = d.target.display ?? d.target.label;
    const what = d.score_kind === "log_p" ? `log p(${showToken(String(target))}) = ${fmt(d.score, 3)}` : `output ${target} = ${fmt(d.score, 3)}`;
    const rule = { "next token": "the token that came next", predicted: "the model's own choice", given: "as asked", "first output": "the first output" }[d.target.rule] || d.target.rule;
    const big = d.largest;
    const ig = d.completeness ? ` Completeness: the attributions sum to ${fmt(d.completeness.sum, 3)}, f(x) − f(0) = ${fmt(d.completeness.difference, 3)}.` : "";
    const first = d.t > 0 && big !== 0 ? ` The first input (t = 0, ${showToken(d.tokens[0])}) holds ${percent(d.share[0])}.` : "";
    this.nodes.status.textContent =
      `The prediction at t = ${d.t}: ${what} (${rule}). The input that moves it most: t = ${big}, ${showToken(d.tokens[big])} ` +
      `(${fmt(d.inputs[big], 3)}, ${percent(d.share[big])} of all the inputs' |attribution|).${first}${ig}`;
  }

  /** The text up to t, each token's background its contribution (red for, blue against, as h is coloured; the largest |·| is full). */
  _text() {
    const d = this.data;
    const box = this.nodes.text;
    box.replaceChildren();
    let big = 0;
    for (const v of d.inputs) big = Math.max(big, Math.abs(v));
    const frag = document.createDocumentFragment();
    const first = Math.max(0, d.tokens.length - SHOWN_STEPS); // the tokens up to t: the last SHOWN_STEPS of them
    if (first > 0) frag.append(el("span", { class: "at-more", text: `(${first} earlier steps not shown) ` }));
    d.tokens.forEach((tok, s) => {
      if (s < first) return;
      const v = big ? d.inputs[s] / big : 0;
      const span = el("span", { "data-s": String(s), title: `t = ${s} ${showToken(tok)}: ${fmt(d.inputs[s], 4)}`, text: tok.replace(/\n/g, "↵").replace(/\t/g, "⇥") });
      span.style.background = colourOf("h", v);
      span.style.color = darkTextOn("h", v) ? "#1b1f23" : "#ffffff";
      if (s === d.t) span.classList.add("is-current");
      frag.append(span);
      if (tok.includes("\n")) frag.append("\n");
    });
    box.append(frag);
  }

  /** ‖∂ score_t / ∂C_s‖ over s: how much each earlier cell state matters to the prediction at t. Drawn as SVG by
   *  hand, not by plotly: a scrub redraws it, and plotly's react of one 1,000-point line took 43-62 ms here. */
  _curve() {
    const d = this.data;
    if (!d) return;
    const box = this.nodes.curve;
    const W = Math.max(240, box.clientWidth || 600);
    const H = 170;
    const m = { l: 60, r: 12, t: 26, b: 30 };
    const n = d.cell.length;
    const ys = d.cell.filter((v) => v > 0);
    const name = d.gate === "c" ? "C" : "h";
    const svg = svgEl("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", class: "at-svg" });
    svg.append(svgEl("text", { x: 0, y: 15, class: "at-title" }, `‖∂ score / ∂${name}ₛ‖: the gradient back through the state, s = 0 … ${d.t}`));
    const label = ys.length ? `from ${fmt(Math.min(...ys), 3)} to ${fmt(Math.max(...ys), 3)}` : "zero everywhere";
    svg.setAttribute("aria-label", `The norm of the gradient of the prediction at t = ${d.t} with respect to each earlier ${name}, ${label}.`);
    if (ys.length) {
      let lo = Math.log10(Math.min(...ys));
      let hi = Math.log10(Math.max(...ys));
      if (hi - lo < 1e-9) [lo, hi] = [lo - 0.5, hi + 0.5];
      const X = (s) => m.l + ((s + 0.5) / Math.max(n, 1)) * (W - m.l - m.r);
      const Y = (v) => m.t + (1 - (Math.log10(v) - lo) / (hi - lo)) * (H - m.t - m.b);
      const axes = svgEl("g", { class: "at-axes" });
      axes.append(svgEl("line", { x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }), svgEl("line", { x1: m.l, x2: m.l, y1: m.t, y2: H - m.b }));
      for (const s of ticks(0, n - 1, Math.max(2, Math.floor((W - m.l - m.r) / 70)))) {
        axes.append(svgEl("text", { x: X(s), y: H - m.b + 14, "text-anchor": "middle" }, String(s)));
      }
      axes.append(svgEl("text", { x: (m.l + W - m.r) / 2, y: H - 2, "text-anchor": "middle" }, "step s"));
      const decades = [];
      for (let e = Math.ceil(lo); e <= Math.floor(hi); e++) decades.push(e);
      const yTicks = decades.length >= 2 ? decades.map((e) => [10 ** e, `1e${e}`]) : [[10 ** lo, fmt(10 ** lo, 3)], [10 ** hi, fmt(10 ** hi, 3)]];
      for (const [v, text] of yTicks) axes.append(svgEl("text", { x: m.l - 6, y: Y(v) + 4, "text-anchor": "end" }, text));
      svg.append(axes);
      const pts = [];
      const dots = svgEl("g", { class: "at-dots" });
      const withDots = n <= SHOWN_STEPS;
      d.cell.forEach((v, s) => {
        if (!(v > 0)) return;
        pts.push(`${X(s).toFixed(1)},${Y(v).toFixed(1)}`);
        if (!withDots) return;
        const dot = svgEl("circle", { cx: X(s).toFixed(1), cy: Y(v).toFixed(1), r: 2 });
        dot.append(svgEl("title", {}, `s = ${s} ${showToken(d.tokens[s])}: ${v.toPrecision(3)}`));
        dots.append(dot);
      });
      svg.append(svgEl("polyline", { points: pts.join(" "), class: "at-line" }), dots);
    }
    box.replaceChildren(svg);
  }
}

const SVG = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== null) node.textContent = text;
  return node;
}

/** About `count` round steps from lo to hi (1, 2 or 5 times a power of ten apart). */
function ticks(lo, hi, count) {
  if (hi <= lo) return [lo];
  const raw = (hi - lo) / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((k) => k * p).find((k) => k >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) out.push(v);
  return out;
}
