/**
 * colah's step-by-step walkthrough (forget → input and candidate → update the cell → output), each
 * step with its equation and the selected unit's numbers at t. Every number is one of the focus
 * `lines` the server sent (products included: f_c_prev, i_c_tilde, ...); nothing is recomputed here.
 *
 * An equation is written once as a template: {key} is the value of line `key` at t, {(key)} the
 * same in parentheses when negative (after a multiplication dot).
 */

import { directionOf } from "./cards.js";
import { colourOf } from "./colors.js";
import { el, fmt, showToken } from "./format.js";

const σ = "σ";
const hp = "h<sub>t−1</sub>";
const cp = "C<sub>t−1</sub>";
const x = "x<sub>t</sub>";

/** The walkthrough per cell type: {gate (the diagram path it lights), title, prose, rows}. */
const WALKS = {
  lstm: [
    {
      gate: "f",
      title: "1 · Forget: what to throw away",
      prose: `The forget gate looks at ${hp} and ${x} and gives each unit a number between 0 and 1: 1 keeps the old cell state ${cp}, 0 forgets it.`,
      rows: [`f<sub>t</sub> = ${σ}(W<sub>f</sub>·[${hp}, ${x}] + b<sub>f</sub>) = {f}`, `f<sub>t</sub>·${cp} = {f}·{(c_prev)} = {f_c_prev}`],
    },
    {
      gate: "i",
      title: "2 · Input: what new information to store",
      prose: "The input gate decides which units to update; a tanh layer proposes candidate values C̃<sub>t</sub> between −1 and 1.",
      rows: [
        `i<sub>t</sub> = ${σ}(W<sub>i</sub>·[${hp}, ${x}] + b<sub>i</sub>) = {i}`,
        `C̃<sub>t</sub> = tanh(W<sub>C</sub>·[${hp}, ${x}] + b<sub>C</sub>) = {c_tilde}`,
        `i<sub>t</sub>·C̃<sub>t</sub> = {i}·{(c_tilde)} = {i_c_tilde}`,
      ],
    },
    {
      gate: "c",
      title: "3 · Update the cell state",
      prose: "The old state scaled by what the forget gate keeps, plus the candidate scaled by the input gate.",
      rows: [`C<sub>t</sub> = f<sub>t</sub>·${cp} + i<sub>t</sub>·C̃<sub>t</sub> = {f}·{(c_prev)} + {i}·{(c_tilde)} = {f_c_prev} + {(i_c_tilde)} = {c}`],
    },
    {
      gate: "o",
      title: "4 · Output: what to pass on",
      prose: "The output gate picks how much of the squashed cell state leaves as h<sub>t</sub>, the unit's output (and its memory for the next step).",
      rows: [`o<sub>t</sub> = ${σ}(W<sub>o</sub>·[${hp}, ${x}] + b<sub>o</sub>) = {o}`, `h<sub>t</sub> = o<sub>t</sub>·tanh(C<sub>t</sub>) = {o}·{(tanh_c)} = {h}`],
    },
  ],
  gru: [
    {
      gate: "z",
      title: "1 · Update gate: how much to renew",
      prose: `z<sub>t</sub> is the share of the new candidate that enters h<sub>t</sub>; the rest, 1 − z<sub>t</sub>, keeps ${hp}. (One gate does the work of the LSTM's forget and input gates.)`,
      rows: [`z<sub>t</sub> = ${σ}(W<sub>z</sub>·[${hp}, ${x}]) = {z}`],
    },
    {
      gate: "r",
      title: "2 · Reset gate: how much of the past the candidate sees",
      prose: `r<sub>t</sub> near 0 lets the candidate ignore ${hp}, as if starting afresh.`,
      rows: [`r<sub>t</sub> = ${σ}(W<sub>r</sub>·[${hp}, ${x}]) = {r}`, `r<sub>t</sub>·${hp} = {r}·{(h_prev)} = {r_h_prev}`],
      resetAfter: "This GRU applies r after the matrix product (PyTorch's convention): h̃<sub>t</sub> = tanh(W<sub>x</sub>·x<sub>t</sub> + r<sub>t</sub>·(U·h<sub>t−1</sub> + b)), so there is no single r·h<sub>t−1</sub> to show.",
    },
    {
      gate: "h_tilde",
      title: "3 · Candidate",
      prose: "A tanh layer proposes the new hidden state from the input and the reset past.",
      rows: [
        { tpl: `h̃<sub>t</sub> = tanh(W·[r<sub>t</sub>·${hp}, ${x}]) = {h_tilde}`, onlyWith: "r_h_prev" },
        // PyTorch's convention (no r·h_{t−1} line): r gates the product U·h_{t−1}
        { tpl: `h̃<sub>t</sub> = tanh(W<sub>x</sub>·${x} + r<sub>t</sub>·(U·${hp} + b)) = {h_tilde}`, onlyWithout: "r_h_prev" },
      ],
    },
    {
      gate: "h",
      title: "4 · Blend old and new",
      prose: "The new hidden state mixes the old one and the candidate, in the proportion the update gate chose.",
      rows: [
        `h<sub>t</sub> = (1 − z<sub>t</sub>)·${hp} + z<sub>t</sub>·h̃<sub>t</sub> = {one_minus_z}·{(h_prev)} + {z}·{(h_tilde)} = {one_minus_z_h_prev} + {(z_h_tilde)} = {h}`,
      ],
    },
  ],
  rnn: [
    {
      gate: "h",
      title: "One step: a single tanh layer",
      prose: `A plain RNN has no gates: each step squashes the input and ${hp} through one tanh layer. Nothing protects the past, so it fades within a few steps.`,
      rows: [`h<sub>t</sub> = tanh(W·[${hp}, ${x}] + b) = tanh(W·[{h_prev}, x<sub>t</sub>] + b) = {h}`],
    },
  ],
};

/** The variants' changes to the LSTM walkthrough. */
function walkOf(cell) {
  if (cell === "gru" || cell === "rnn" || cell === "lstm") return WALKS[cell];
  const walk = WALKS.lstm.map((s) => ({ ...s, rows: [...s.rows] }));
  if (cell === "peephole") {
    walk[0].rows[0] = `f<sub>t</sub> = ${σ}(W<sub>f</sub>·[${cp}, ${hp}, ${x}] + b<sub>f</sub>) = {f}`;
    walk[0].prose += ` Peephole: the gates also look at the cell state (f and i at ${cp}, o at C<sub>t</sub>).`;
    walk[1].rows[0] = `i<sub>t</sub> = ${σ}(W<sub>i</sub>·[${cp}, ${hp}, ${x}] + b<sub>i</sub>) = {i}`;
    walk[3].rows[0] = `o<sub>t</sub> = ${σ}(W<sub>o</sub>·[C<sub>t</sub>, ${hp}, ${x}] + b<sub>o</sub>) = {o}`;
  } else if (cell === "coupled") {
    walk[1].rows[0] = "i<sub>t</sub> = 1 − f<sub>t</sub> = {i}";
    walk[1].prose = "Coupled gates: this cell has no separate input gate. It writes exactly as much new as it forgets old: i<sub>t</sub> = 1 − f<sub>t</sub>. A tanh layer proposes the candidate C̃<sub>t</sub>.";
  } else {
    throw new Error(`Unknown cell '${cell}'`);
  }
  return walk;
}

/** Parse an equation template into DOM children; number slots are returned for updating. */
function equation(template, slots) {
  const line = el("div", { class: "eq" });
  const parts = template.split(/(\{\(?[a-z_]+\)?\})/);
  for (const part of parts) {
    const m = part.match(/^\{(\()?([a-z_]+)\)?\}$/);
    if (!m) {
      if (part) line.append(el("span", { html: part }));
      continue;
    }
    const span = el("span", { class: "num", "data-gate": m[2], "data-value": "" });
    slots.push({ key: m[2], paren: Boolean(m[1]), span });
    line.append(span);
  }
  return line;
}

export class Steps {
  constructor(root, state, hooks = {}) {
    this.root = root;
    this.state = state;
    this.hooks = hooks;
    this.slots = [];
    this.rows = [];
    this.head = el("p", { class: "steps-head", "data-testid": "steps-head" });
    this.list = el("ol", { class: "steps-list" });
    this.root.append(this.head, this.list);
    state.subscribe((changed) => this._onChange(changed));
  }

  _onChange(changed) {
    const s = this.state;
    if (changed.has("model") || (changed.has("unit") && directionOf(s.card, s.unit).direction !== this._direction)) this._build();
    if (["model", "trace", "focus", "t", "unit", "layer"].some((k) => changed.has(k))) this._update();
  }

  _build() {
    const card = this.state.card;
    this.slots = [];
    this.rows = [];
    this.list.replaceChildren();
    // a backward unit reads the text from the end: its previous state is step t+1's
    this._direction = directionOf(card, this.state.unit).direction;
    const back = this._direction === "backward";
    const later = (html) => (back ? html.replaceAll("t−1", "t+1") : html);
    for (const step of walkOf(card.cell)) {
      const li = el("li", { class: "step", "data-gate": step.gate, tabindex: "0" });
      li.append(el("h3", { html: step.title }), el("p", { class: "prose", html: later(step.prose) }));
      for (const row of step.rows) {
        const { tpl: written, onlyWith, onlyWithout } = typeof row === "string" ? { tpl: row } : row;
        const tpl = later(written);
        const slots = [];
        const eq = equation(tpl, slots);
        this.slots.push(...slots);
        this.rows.push({ eq, keys: slots.map((s) => s.key).concat(onlyWith ? [onlyWith] : []), showWhenMissing: onlyWithout });
        li.append(eq);
      }
      if (step.resetAfter) {
        const note = el("p", { class: "note", html: step.resetAfter, hidden: true });
        this.rows.push({ eq: note, keys: [], showWhenMissing: "r_h_prev" });
        li.append(note);
      }
      const enter = () => this.hooks.onGate?.(step.gate);
      const leave = () => this.hooks.onGate?.(null);
      li.addEventListener("mouseenter", enter);
      li.addEventListener("mouseleave", leave);
      li.addEventListener("focus", enter);
      li.addEventListener("blur", leave);
      this.list.append(li);
    }
  }

  _update() {
    const s = this.state;
    if (!s.card) return;
    const lines = s.currentLines();
    const T = s.T;
    const t = s.t;
    const layerNote = s.card.layers > 1 ? ` (layer ${s.layer})` : "";
    if (!T) {
      this.head.textContent = "Type some text: the numbers of one unit appear here, step by step.";
    } else {
      this.head.replaceChildren(
        `At t = ${t}, reading x`,
        el("sub", { text: "t" }),
        " = ",
        el("span", { class: "tok", text: showToken(s.trace.tokens[t]) }),
        `, unit ${s.unit}${layerNote}${this._direction === "backward" ? " (backward: it reads from the end, so its previous state is step t+1's)" : ""}:`,
      );
    }
    const cellMax = s.trace.cellMax(s.layer) || 1;
    for (const slot of this.slots) {
      const vals = lines?.[slot.key];
      const v = vals && T ? vals[t] : undefined;
      const span = slot.span;
      if (v === undefined) {
        span.textContent = "…";
        span.dataset.value = "";
        span.style.borderBottomColor = "transparent";
        continue;
      }
      const text = fmt(v);
      span.textContent = slot.paren && v < 0 && text !== "0.00" ? `(${text})` : text;
      span.dataset.value = String(v);
      span.title = String(v);
      span.style.borderBottomColor = colourOf(slot.key, v, cellMax);
    }
    for (const row of this.rows) {
      if (row.showWhenMissing) row.eq.hidden = !lines || row.showWhenMissing in lines;
      else row.eq.hidden = Boolean(lines) && row.keys.some((k) => !(k in lines));
    }
  }
}
