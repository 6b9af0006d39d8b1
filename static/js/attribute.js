/**
 * What the prediction at step t depends on: the text up to t coloured by each input's contribution (gradient × input,
 * or integrated gradients), and the curve of ‖∂ score_t / ∂C_s‖ over s — the gradient flowing back through the cell
 * state (h_s for GRU and RNN), colah's long-term dependency made visible. The server computes both by exact
 * backpropagation through time (POST /api/attribute, model/attribution.py; it keeps the text's forward pass, so a
 * scrubbed step costs one backward pass); this view draws them, for the step the scrubber is at.
 *
 * Change costs: "t" asks for the new step at once (the request before it is aborted); "trace", "layer" and the
 * method ask again after SETTLE_MS.
 */

import { attribute } from "./api.js";
import { colourOf, darkTextOn } from "./colors.js";
import { el, fmt, showToken } from "./format.js";
import { CONFIG, FONT, axis, plotlyReady } from "./plotting.js";

const SETTLE_MS = 300;
/** Integrated gradients' points (the server's default). */
const IG_STEPS = 32;

export class AttributeView {
  /** nodes: {root, method, status, text, curve}. */
  constructor(nodes, state) {
    this.nodes = nodes;
    this.state = state;
    this.data = null;
    this._timer = 0;
    this._asking = null;
    nodes.method.append(new Option("gradient × input", "grad_x_input"), new Option(`integrated gradients (${IG_STEPS} points)`, "integrated_gradients"));
    nodes.method.addEventListener("change", () => this._ask());
    state.subscribe((changed) => this._onChange(changed));
    new ResizeObserver(() => this.data && window.Plotly && this._curve()).observe(nodes.curve);
  }

  _onChange(changed) {
    const s = this.state;
    if (changed.has("model")) {
      const usable = s.card?.head && s.card?.direction === "forward";
      this.nodes.root.hidden = !usable; // no head: nothing predicted; a backward direction: not backpropagated here
      this._clear("");
    }
    if (changed.has("t") && !changed.has("trace")) return this._ask();
    if (["trace", "layer", "model"].some((k) => changed.has(k))) {
      clearTimeout(this._timer);
      this._timer = setTimeout(() => this._ask(), SETTLE_MS);
    }
  }

  _clear(note) {
    this._asking?.abort();
    if (window.Plotly) window.Plotly.purge(this.nodes.curve);
    this.data = null;
    this.nodes.text.replaceChildren();
    this.nodes.status.textContent = note;
    this.nodes.root.dataset.t = "";
  }

  async _ask() {
    const s = this.state;
    clearTimeout(this._timer);
    if (this.nodes.root.hidden || !s.tracedText || !s.T) return;
    const t = Math.min(s.t, s.T - 1);
    const method = this.nodes.method.value;
    const body = { model: s.model, text: s.tracedText, t, method, layer: s.layer };
    if (method === "integrated_gradients") body.steps = IG_STEPS;
    this._asking?.abort();
    const ctl = new AbortController();
    this._asking = ctl;
    try {
      const [out] = await Promise.all([attribute(body, ctl.signal), plotlyReady()]);
      if (ctl.signal.aborted) return;
      this.data = out;
      this._text();
      this._curve();
      this._say();
      this.nodes.root.dataset.t = String(out.t);
    } catch (e) {
      if (e.name === "AbortError") return;
      this._clear(`Not attributed: ${e.message}`);
    }
  }

  _say() {
    const d = this.data;
    const target = d.target.display ?? d.target.label;
    const what = d.score_kind === "log_p" ? `log p(${showToken(String(target))}) = ${fmt(d.score, 3)}` : `output ${target} = ${fmt(d.score, 3)}`;
    const rule = { "next token": "the token that came next", predicted: "the model's own choice", given: "as asked", "first output": "the first output" }[d.target.rule] || d.target.rule;
    let big = 0;
    for (let s = 1; s <= d.t; s++) if (Math.abs(d.inputs[s]) > Math.abs(d.inputs[big])) big = s;
    const ig = d.completeness ? ` Completeness: the attributions sum to ${fmt(d.completeness.sum, 3)}, f(x) − f(0) = ${fmt(d.completeness.difference, 3)}.` : "";
    this.nodes.status.textContent =
      `The prediction at t = ${d.t}: ${what} (${rule}). The input that moves it most: t = ${big}, ${showToken(d.tokens[big])} (${fmt(d.inputs[big], 3)}).${ig}`;
  }

  /** The text up to t, each token's background its contribution (blue for, red against; the largest |·| is full). */
  _text() {
    const d = this.data;
    const box = this.nodes.text;
    box.replaceChildren();
    let big = 0;
    for (const v of d.inputs) big = Math.max(big, Math.abs(v));
    const frag = document.createDocumentFragment();
    d.tokens.forEach((tok, s) => {
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

  /** ‖∂ score_t / ∂C_s‖ over s: how much each earlier cell state matters to the prediction at t. */
  _curve() {
    const d = this.data;
    if (!d || !window.Plotly) return;
    const s = [...Array(d.cell.length).keys()];
    const name = d.gate === "c" ? "C" : "h";
    const layout = {
      width: this.nodes.curve.clientWidth || 600, height: 170, margin: { l: 60, r: 12, t: 26, b: 30 }, font: FONT,
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      title: { text: `‖∂ score / ∂${name}<sub>s</sub>‖: the gradient back through the state`, x: 0, xref: "paper", font: { size: 13 } },
      xaxis: axis({ range: [-0.5, Math.max(d.t, 1) + 0.5], title: { text: "step s", standoff: 2, font: { size: 11 } } }),
      yaxis: axis({ type: "log", title: { text: "norm (log)", standoff: 4, font: { size: 11 } }, exponentformat: "power" }),
    };
    const y = d.cell.map((v) => (v > 0 ? v : null));
    const data = [{ type: "scatter", mode: "lines+markers", x: s, y, marker: { size: 4 }, line: { color: "#1f5fbf", width: 1.5 }, hovertemplate: "s = %{x}: %{y:.3g}<extra></extra>" }];
    window.Plotly.react(this.nodes.curve, data, layout, CONFIG);
  }
}
