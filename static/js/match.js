/**
 * Match a pattern (LSTMVis's core move): a span of this text and a threshold select the units that are on (value ≥
 * threshold on every step of the span); the server then finds the runs of the corpus index (or of this text) where
 * all those units are on together, best first (POST /api/models/{id}/match). Each match is a snippet coloured by the
 * share of those units on at each step, the run underlined; clicking it opens it in the main view at the run's
 * first step with the first unit selected (a match in this text just moves there).
 *
 * The span: shift-click a heatmap cell (the span from step t to it), or type its first and last steps here, or
 * press "From t" / "To t" after scrubbing to a step (← →): every way works from the keyboard too.
 */

import { matchPattern } from "./api.js";
import { PLAIN, el, esc, showToken } from "./format.js";

/** The threshold offered first for each kind of gate (LSTMVis: 0.3 on h). */
function defaultThreshold(gate) {
  return ["h", "c_tilde", "h_tilde"].includes(gate) ? 0.3 : 0.5;
}

/** The values a gate can take ([0, 1] sigmoid, [−1, 1] tanh; C unbounded). */
function rangeOfGate(gate) {
  if (["f", "i", "o", "z", "r"].includes(gate)) return [0, 1];
  if (["h", "c_tilde", "h_tilde"].includes(gate)) return [-1, 1];
  return [null, null];
}

export class MatchView {
  /** nodes: {root, form, start, stop, from, to, gate, threshold, search, find, span, status, units, results}. */
  constructor(nodes, state) {
    this.nodes = nodes;
    this.state = state;
    this._asking = null;
    this.answer = null;
    nodes.search.append(new Option("the corpus index, else this text", "auto"), new Option("this text", "text"), new Option("the corpus index", "index"));
    nodes.form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this._find();
    });
    nodes.from.addEventListener("click", () => this._setEnd("start", state.t));
    nodes.to.addEventListener("click", () => this._setEnd("stop", state.t));
    for (const which of ["start", "stop"]) {
      nodes[which].addEventListener("change", () => {
        const v = Number(nodes[which].value);
        if (Number.isInteger(v)) this._setEnd(which, v);
      });
    }
    nodes.gate.addEventListener("change", () => this._gateChanged());
    state.subscribe((changed) => this._onChange(changed));
  }

  _onChange(changed) {
    const s = this.state;
    if (changed.has("model")) {
      const card = s.card;
      this.nodes.root.hidden = !card || card.input === "vectors";
      this.nodes.gate.replaceChildren(...(card?.gates || []).map((g) => new Option(PLAIN[g] || g, g)));
      this.nodes.gate.value = card?.gates.includes("h") ? "h" : card?.gates[0] || "";
      this._gateChanged();
      this._showAnswer(null);
    }
    if (changed.has("span") || changed.has("trace") || changed.has("model")) this._showSpan();
  }

  _gateChanged() {
    const g = this.nodes.gate.value;
    const [lo, hi] = rangeOfGate(g);
    const th = this.nodes.threshold;
    th.min = lo ?? "";
    th.max = hi ?? "";
    th.value = String(defaultThreshold(g));
  }

  /** Move one end of the span to step t (the last step shown for "stop": the span includes it). */
  _setEnd(which, t) {
    const s = this.state;
    const span = s.span || { start: s.t, stop: s.t + 1 };
    const next = which === "start" ? { start: t, stop: Math.max(span.stop, t + 1) } : { start: Math.min(span.start, t), stop: t + 1 };
    s.setSpan(next);
  }

  _showSpan() {
    const s = this.state;
    const span = s.span;
    const { start, stop, find, span: shown } = this.nodes;
    const T = s.T;
    start.max = stop.max = String(Math.max(0, T - 1));
    if (!span || span.stop > T) {
      start.value = stop.value = "";
      shown.textContent = "Shift-click a heatmap cell to select the steps from t to it, or set them here.";
      find.disabled = true;
      return;
    }
    start.value = String(span.start);
    stop.value = String(span.stop - 1);
    const toks = s.trace.tokens.slice(span.start, span.stop).map(showToken).join("");
    shown.innerHTML = `Steps ${span.start}–${span.stop - 1} (${span.stop - span.start}): <code class="mt-tokens">${esc(toks)}</code>`;
    find.disabled = false;
  }

  async _find() {
    const s = this.state;
    const span = s.span;
    if (!span || !s.card) return;
    const body = {
      text: s.tracedText, start: span.start, stop: span.stop, threshold: Number(this.nodes.threshold.value),
      gate: this.nodes.gate.value, layer: s.layer, search: this.nodes.search.value, top: 12,
    };
    this._asking?.abort();
    const ctl = new AbortController();
    this._asking = ctl;
    this.nodes.status.textContent = "Searching…";
    try {
      const out = await matchPattern(s.model, body, ctl.signal);
      if (ctl.signal.aborted) return;
      this._showAnswer({ ...out, search: out.source, layer: body.layer, gate: body.gate });
    } catch (e) {
      if (e.name === "AbortError") return;
      this._showAnswer(null);
      this.nodes.status.textContent = `No search: ${e.message}`;
    }
  }

  _showAnswer(out) {
    this.answer = out;
    const { units, results, status } = this.nodes;
    units.replaceChildren();
    results.replaceChildren();
    status.textContent = "";
    if (!out) return;
    if (!out.units.length) {
      status.textContent = out.note;
      return;
    }
    const where = out.search === "index" ? "the corpus index" : "this text";
    status.textContent =
      `${out.units.length} unit${out.units.length === 1 ? "" : "s"} on; ${out.found.toLocaleString("en")} run${out.found === 1 ? "" : "s"} in ${where} ` +
      `(${out.steps.toLocaleString("en")} steps)${out.matches.length < out.found ? `, the best ${out.matches.length}` : ""}.` +
      (out.note ? ` ${out.note}.` : "");
    units.append(el("span", { class: "mt-label", text: "Units on:" }));
    for (const u of out.units.slice(0, 64)) {
      const b = el("button", { type: "button", class: "mini mt-unit", "data-unit": u, text: String(u), title: `Select unit ${u}` });
      b.addEventListener("click", () => this.state.select({ unit: u, layer: out.layer }));
      units.append(b);
    }
    if (out.units.length > 64) units.append(el("span", { class: "mt-label", text: `… and ${out.units.length - 64} more` }));
    out.matches.forEach((m, k) => results.append(this._result(m, k, out)));
  }

  /** A match as a button: where it is, and its snippet coloured by the share of the units on, the run underlined. */
  _result(m, k, out) {
    const [a, b] = m.match;
    const toks = m.tokens.map((tok, j) => {
      const on = m.on[j] ?? 0;
      const cls = j >= a && j < b ? "mt-tok is-run" : "mt-tok";
      return `<span class="${cls}" style="background: rgba(31, 95, 191, ${(0.55 * on).toFixed(3)})">${esc(showToken(tok))}</span>`;
    });
    const where = out.search === "index" ? `${m.source}${m.line ? `:${m.line + 1}` : ""} · step ${m.pos}` : `step ${m.pos}`;
    const btn = el("button", {
      type: "button", class: "mt-result", "data-testid": "match-result", "data-pos": m.pos,
      title: out.search === "index" ? "Open this snippet in the main view at the match" : "Go to this step",
      "aria-label": `Match ${k + 1}: ${m.length} steps at ${where}`,
    });
    btn.innerHTML = `<span class="mt-where">${esc(where)} · ${m.length} step${m.length === 1 ? "" : "s"}</span><span class="mt-snippet">${toks.join("")}</span>`;
    btn.addEventListener("click", () => this._open(m, out));
    return btn;
  }

  _open(m, out) {
    const s = this.state;
    const unit = out.units[0];
    if (out.search === "text") {
      s.select({ t: m.pos, unit, layer: out.layer });
      return;
    }
    const sep = s.card?.tokenizer === "word" ? " " : "";
    s.openContext({ text: m.tokens.join(sep), t: m.pos - m.start, unit, layer: out.layer });
  }
}
