/**
 * colah's step-by-step walkthrough (forget → input and candidate → update the cell → output), each
 * step with its equation and the selected unit's numbers at t. Every number is one of the focus
 * `lines` the server sent (products included: f_c_prev, i_c_tilde, ...); nothing is recomputed here.
 *
 * An equation is written once as a template: {key} is the value of line `key` at t, {(key)} the
 * same in parentheses when negative (after a multiplication dot).
 *
 * The arithmetic a row shows checks out as shown: each number is rounded to as many digits as it takes for
 * the displayed operands to give the displayed result once rounded to its shown decimals (a forget gate of
 * 0.9966 times −32.29 shows as 0.9966, not 1.00). The numbers are the server's, only rounded.
 */

import { directionOf } from "./cards.js";
import { colourOf } from "./colors.js";
import { el, setText, showToken } from "./format.js";
import { heldKeys } from "./hold.js";

const σ = "σ";
const hp = "h<sub>t−1</sub>";
const cp = "C<sub>t−1</sub>";
const x = "x<sub>t</sub>";

/** The walkthrough per cell type: {gate (its heatmap), lights (every box, op and line of the step in the diagram:
 *  "k" the box or op k with its lines, "line:k" only the lines carrying k), title, prose, rows}. */
const WALKS = {
  lstm: [
    {
      gate: "f",
      lights: ["h_prev", "f", "c_prev", "f_c_prev"],
      title: "1 · Forget: what to throw away",
      prose: `The forget gate looks at ${hp} and ${x} and gives each unit a number between 0 and 1: 1 keeps the old cell state ${cp}, 0 forgets it.`,
      rows: [`f<sub>t</sub> = ${σ}(W<sub>f</sub>·[${hp}, ${x}] + b<sub>f</sub>) = {f}`, `f<sub>t</sub>·${cp} = {f}·{(c_prev)} = {f_c_prev}`],
    },
    {
      gate: "i",
      lights: ["h_prev", "i", "c_tilde", "i_c_tilde"],
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
      lights: ["line:c_prev", "line:f", "f_c_prev", "line:i", "line:c_tilde", "i_c_tilde", "c"],
      title: "3 · Update the cell state",
      prose: "The old state scaled by what the forget gate keeps, plus the candidate scaled by the input gate.",
      rows: [`C<sub>t</sub> = f<sub>t</sub>·${cp} + i<sub>t</sub>·C̃<sub>t</sub> = {f}·{(c_prev)} + {i}·{(c_tilde)} = {f_c_prev} + {(i_c_tilde)} = {c}`],
    },
    {
      gate: "o",
      lights: ["h_prev", "o", "line:c", "tanh_c", "h"],
      title: "4 · Output: what to pass on",
      prose: "The output gate picks how much of the squashed cell state leaves as h<sub>t</sub>, the unit's output (and its memory for the next step).",
      rows: [`o<sub>t</sub> = ${σ}(W<sub>o</sub>·[${hp}, ${x}] + b<sub>o</sub>) = {o}`, `h<sub>t</sub> = o<sub>t</sub>·tanh(C<sub>t</sub>) = {o}·{(tanh_c)} = {h}`],
    },
  ],
  gru: [
    {
      gate: "z",
      lights: ["h_prev", "z"],
      title: "1 · Update gate: how much to renew",
      prose: `z<sub>t</sub> is the share of the new candidate that enters h<sub>t</sub>; the rest, 1 − z<sub>t</sub>, keeps ${hp}. (One gate does the work of the LSTM's forget and input gates.)`,
      rows: [`z<sub>t</sub> = ${σ}(W<sub>z</sub>·[${hp}, ${x}]) = {z}`],
    },
    {
      gate: "r",
      lights: ["h_prev", "r", "r_h_prev"],
      title: "2 · Reset gate: how much of the past the candidate sees",
      prose: `r<sub>t</sub> near 0 lets the candidate ignore ${hp}, as if starting afresh.`,
      rows: [`r<sub>t</sub> = ${σ}(W<sub>r</sub>·[${hp}, ${x}]) = {r}`, `r<sub>t</sub>·${hp} = {r}·{(h_prev)} = {r_h_prev}`],
      resetAfter: "This GRU applies r after the matrix product (PyTorch's convention): h̃<sub>t</sub> = tanh(W<sub>x</sub>·x<sub>t</sub> + r<sub>t</sub>·(U·h<sub>t−1</sub> + b)), so there is no single r·h<sub>t−1</sub> to show.",
    },
    {
      gate: "h_tilde",
      lights: ["line:r_h_prev", "h_tilde"],
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
      lights: ["line:h_prev", "one_minus_z", "one_minus_z_h_prev", "line:z", "line:h_tilde", "z_h_tilde", "h"],
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
      lights: ["h_prev", "h"],
      title: "One step: a single tanh layer",
      prose: `A plain RNN has no gates: each step squashes the input and ${hp} through one tanh layer. Nothing protects the past, so it fades within a few steps.`,
      rows: [`h<sub>t</sub> = tanh(W·[${hp}, ${x}] + b) = tanh(W·[{h_prev}, x<sub>t</sub>] + b) = {h}`],
    },
  ],
};

/** The variants' changes to the LSTM walkthrough. */
function walkOf(cell, card = {}) {
  if (cell === "lstm" && card.proj_size) {
    // PyTorch's proj_size: h is a projection of m = o·tanh(C), P of the H units (unit u ≥ P has no h)
    const walk = WALKS.lstm.map((s) => ({ ...s, rows: [...s.rows] }));
    walk[3].rows = [
      walk[3].rows[0],
      `m<sub>t</sub> = o<sub>t</sub>·tanh(C<sub>t</sub>) = {o}·{(tanh_c)} = {m}`,
      `h<sub>t</sub> = W<sub>hr</sub>·m<sub>t</sub> = {h}  (${card.proj_size} of ${card.hidden_size} units)`,
    ];
    walk[3].lights = [...walk[3].lights, "m"];
    walk[3].prose += ` Projected (proj_size ${card.proj_size}): h<sub>t</sub> is W<sub>hr</sub> times the whole vector m<sub>t</sub>.`;
    return walk;
  }
  if (cell === "gru" || cell === "rnn" || cell === "lstm") return WALKS[cell];
  const walk = WALKS.lstm.map((s) => ({ ...s, rows: [...s.rows] }));
  if (cell === "peephole") {
    walk[0].rows[0] = `f<sub>t</sub> = ${σ}(W<sub>f</sub>·[${cp}, ${hp}, ${x}] + b<sub>f</sub>) = {f}`;
    walk[0].prose += ` Peephole: the gates also look at the cell state (f and i at ${cp}, o at C<sub>t</sub>).`;
    walk[1].rows[0] = `i<sub>t</sub> = ${σ}(W<sub>i</sub>·[${cp}, ${hp}, ${x}] + b<sub>i</sub>) = {i}`;
    walk[3].rows[0] = `o<sub>t</sub> = ${σ}(W<sub>o</sub>·[C<sub>t</sub>, ${hp}, ${x}] + b<sub>o</sub>) = {o}`;
  } else if (cell === "coupled") {
    walk[1].rows[0] = "i<sub>t</sub> = 1 − f<sub>t</sub> = {i}";
    walk[1].lights = ["h_prev", "f", "i", "c_tilde", "i_c_tilde"]; // i = 1 − f: the forget layer feeds the 1− op
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

const SLOT = /\{\(?([a-z_]+)\)?\}/g;

/** The arithmetic a template states, as relations {left, right}: `left` a sum of products (lists of keys) that
 *  the number `right` equals, for each pair of neighbouring "=" sides made only of numbers. A side of several
 *  products next to the same count of single numbers is read term by term (f·C + i·C̃ = f·C_prev + i·C̃), as a
 *  reader checks it. */
function arithmeticOf(template) {
  const sides = template.split(" = ").map((side) => {
    const numeric = side.includes("{") && /^[\s·+]*$/.test(side.replace(SLOT, ""));
    return numeric ? side.split(" + ").map((term) => [...term.matchAll(SLOT)].map((m) => m[1])) : null;
  });
  const out = [];
  for (let k = 1; k < sides.length; k++) {
    const [a, b] = [sides[k - 1], sides[k]];
    if (!a || !b) continue;
    if (b.length === 1 && b[0].length === 1) out.push({ left: a, right: b[0][0] });
    else if (a.length === b.length && b.every((term) => term.length === 1)) a.forEach((term, n) => out.push({ left: [term], right: b[n][0] }));
    else throw new Error(`Cannot read the arithmetic of '${template}'`);
  }
  return out;
}

/** Significant digits a card number starts with (at least 2 decimals, 1 from 100, 0 from 1,000). */
const DIGITS = 2;
/** Most decimals a card number gets. */
const MAX_DECIMALS = 6;

/** Decimals for v at `s` significant digits: at least 2 (1 from 100, 0 from 1,000), at most MAX_DECIMALS. */
function decimalsOf(v, s) {
  const a = Math.abs(v);
  const least = a >= 1000 ? 0 : a >= 100 ? 1 : 2;
  if (!(a > 0)) return least;
  return Math.max(least, Math.min(MAX_DECIMALS, s - 1 - Math.floor(Math.log10(a))));
}

/** A sum of products of the shown numbers. */
const evaluate = (side, shown) => side.reduce((sum, term) => sum + term.reduce((p, k) => p * shown[k], 1), 0);

/**
 * Decimals for each key (values: {key: number}) so that every relation holds between the shown numbers: the
 * left side worked out from the shown operands, rounded to the right side's decimals, is the shown right
 * side. Results keep their usual digits; in a relation that fails, the operand whose rounding moves it most
 * gets one more decimal, until all hold (or MAX_DECIMALS).
 */
export function digitsFor(values, relations) {
  const dec = {};
  for (const [k, v] of Object.entries(values)) dec[k] = decimalsOf(v, DIGITS);
  const live = relations.filter((r) => r.right in values && r.left.flat().every((k) => k in values));
  for (let round = 0; round < 4 * MAX_DECIMALS; round++) {
    const shown = {};
    for (const [k, v] of Object.entries(values)) shown[k] = Number(v.toFixed(dec[k]));
    const failing = live.filter((r) => Math.abs(evaluate(r.left, shown) - shown[r.right]) > 10 ** -dec[r.right] * (0.5 + 1e-9));
    // in each failing relation, the operand whose rounding moves the left side most gets a decimal
    const more = new Set();
    for (const r of failing) {
      let best = null;
      let worst = -1;
      for (const term of r.left) {
        for (const [n, k] of term.entries()) {
          const others = term.reduce((p, u, m) => (m === n ? p : p * Math.abs(shown[u])), 1);
          const moves = others * 10 ** -dec[k];
          if (dec[k] < MAX_DECIMALS && moves > worst) [best, worst] = [k, moves];
        }
      }
      if (best !== null) more.add(best);
    }
    if (!more.size) break;
    for (const k of more) dec[k] += 1;
  }
  return dec;
}

/** v with `d` decimals and a true minus sign (no "−0.00"). */
function fixed(v, d) {
  const s = Math.abs(v).toFixed(d);
  return v < 0 && Number(s) !== 0 ? `−${s}` : s;
}

/** How long the walk shows each step, in ms. */
const WALK_MS = 1800;

export class Steps {
  /** root: the panel's body; hooks.onGate(gate | null, lights) when a card is hovered, focused or walked. */
  constructor(root, state, hooks = {}) {
    this.root = root;
    this.state = state;
    this.hooks = hooks;
    this.slots = [];
    this.rows = [];
    this.cards = [];
    this._walk = null;
    this.head = el("p", { class: "steps-head", "data-testid": "steps-head" });
    this.walkButton = el("button", {
      type: "button", class: "mini steps-walk", "data-testid": "steps-walk", "aria-pressed": "false",
      title: "Light each step of the cell at this t in turn, in the diagram and here",
    });
    this.walkButton.textContent = "▶ Walk the steps";
    this.walkButton.addEventListener("click", () => (this._walk ? this.stopWalk() : this.walk()));
    this.list = el("ol", { class: "steps-list" });
    this.note = el("p", {
      class: "steps-note",
      text: "Each number is rounded to as many digits as its row's arithmetic needs to check out; hover one for its exact value.",
    });
    this.root.append(this.head, this.walkButton, this.list, this.note);
    state.subscribe((changed) => this._onChange(changed));
  }

  /** Mark the card of the step a diagram part belongs to (the first step that lights it as its own); null clears. */
  highlight(part) {
    const k = part === null ? -1 : this.cards.findIndex((c) => c.step.lights.includes(part));
    this._mark(k);
  }

  /** Light the steps one after another (the walk), each for WALK_MS; ends on its own after the last. */
  walk() {
    this.stopWalk();
    let k = 0;
    const show = () => {
      if (k >= this.cards.length) return this.stopWalk();
      const { step } = this.cards[k];
      this._mark(k);
      this.hooks.onGate?.(step.gate, step.lights);
      k += 1;
      this._walk = setTimeout(show, WALK_MS);
    };
    this._walk = -1;
    this.walkButton.setAttribute("aria-pressed", "true");
    this.walkButton.textContent = "■ Stop the walk";
    show();
  }

  /** End the walk (if any) and clear what it lit. */
  stopWalk() {
    if (!this._walk) return;
    clearTimeout(this._walk);
    this._walk = null;
    this.walkButton.setAttribute("aria-pressed", "false");
    this.walkButton.textContent = "▶ Walk the steps";
    this._mark(-1);
    this.hooks.onGate?.(null, null);
  }

  _mark(k) {
    this.cards.forEach((c, j) => {
      c.li.classList.toggle("step-lit", j === k);
      if (j === k) c.li.setAttribute("aria-current", "step");
      else c.li.removeAttribute("aria-current");
    });
  }

  _onChange(changed) {
    const s = this.state;
    if (changed.has("model") || (changed.has("unit") && directionOf(s.card, s.unit).direction !== this._direction)) this._build();
    if (["model", "trace", "focus", "t", "unit", "layer", "held"].some((k) => changed.has(k))) this._update();
  }

  _build() {
    const card = this.state.card;
    this.stopWalk();
    this.slots = [];
    this.rows = [];
    this.cards = [];
    this.list.replaceChildren();
    // a backward unit reads the text from the end: its previous state is step t+1's
    this._direction = directionOf(card, this.state.unit).direction;
    const back = this._direction === "backward";
    const later = (html) => (back ? html.replaceAll("t−1", "t+1") : html);
    for (const step of walkOf(card.cell, card)) {
      const li = el("li", { class: "step", "data-gate": step.gate, tabindex: "0" });
      const card = { li, step, slots: [], arithmetic: [] };
      li.append(el("h3", { html: step.title }), el("p", { class: "prose", html: later(step.prose) }));
      for (const row of step.rows) {
        const { tpl: written, onlyWith, onlyWithout } = typeof row === "string" ? { tpl: row } : row;
        const tpl = later(written);
        const slots = [];
        const eq = equation(tpl, slots);
        this.slots.push(...slots);
        card.slots.push(...slots);
        const keys = slots.map((s) => s.key).concat(onlyWith ? [onlyWith] : []);
        this.rows.push({ eq, keys, showWhenMissing: onlyWithout });
        card.arithmetic.push(...arithmeticOf(tpl));
        li.append(eq);
      }
      if (step.resetAfter) {
        const note = el("p", { class: "note", html: step.resetAfter, hidden: true });
        this.rows.push({ eq: note, keys: [], showWhenMissing: "r_h_prev" });
        li.append(note);
      }
      const enter = () => {
        if (this._walk) this.stopWalk();
        this._mark(this.cards.findIndex((c) => c.li === li));
        this.hooks.onGate?.(step.gate, step.lights);
      };
      const leave = () => {
        if (this._walk) return;
        this._mark(-1);
        this.hooks.onGate?.(null, null);
      };
      li.addEventListener("mouseenter", enter);
      li.addEventListener("mouseleave", leave);
      li.addEventListener("focus", enter);
      li.addEventListener("blur", leave);
      li.addEventListener("keydown", (ev) => {
        // ↑ ↓ move between the cards (← → stay the scrubber's)
        const k = this.cards.findIndex((c) => c.li === li) + (ev.key === "ArrowDown" ? 1 : ev.key === "ArrowUp" ? -1 : NaN);
        if (!this.cards[k]) return;
        ev.preventDefault();
        this.cards[k].li.focus();
      });
      this.cards.push(card);
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
      this._headParts = null;
      this.head.textContent = "Type some text: the numbers of one unit appear here, step by step.";
    } else {
      // built once; a scrub step rewrites only the texts that changed
      let h = this._headParts;
      if (!h || this.head.firstChild !== h.first) {
        const [first, tok, rest] = [document.createTextNode(""), el("span", { class: "tok" }), document.createTextNode("")];
        this.head.replaceChildren(first, el("sub", { text: "t" }), " = ", tok, rest);
        h = this._headParts = { first, tok, rest };
      }
      const back = this._direction === "backward" ? " (backward: it reads from the end, so its previous state is step t+1's)" : "";
      setText(h.first, `At t = ${t}, reading x`);
      setText(h.tok, showToken(s.trace.tokens[t]));
      setText(h.rest, `, unit ${s.unit}${layerNote}${back}:`);
    }
    const cellMax = s.trace.cellMax(s.layer) || 1;
    const held = T ? heldKeys(s, t) : new Set();
    for (const card of this.cards) this._showNumbers(card, lines, T ? t : -1, cellMax, held);
    for (const row of this.rows) {
      if (row.showWhenMissing) row.eq.hidden = !lines || row.showWhenMissing in lines;
      else row.eq.hidden = Boolean(lines) && row.keys.some((k) => !(k in lines));
    }
  }

  /** A card's numbers at t (−1: none), with the digits its arithmetic needs (the same for a key across the card);
   *  a number the model was given by hand (`held`: its keys, hold.js) says so: "→ held" beside it. */
  _showNumbers(card, lines, t, cellMax, held) {
    const values = {};
    for (const slot of card.slots) {
      const v = lines?.[slot.key]?.[t];
      if (typeof v === "number") values[slot.key] = v;
    }
    const decimals = digitsFor(values, card.arithmetic);
    for (const slot of card.slots) {
      const v = values[slot.key];
      const span = slot.span;
      this._markHeld(slot, v !== undefined && held.has(slot.key));
      if (v === undefined) {
        if (slot.last === undefined && span.dataset.value === "") continue;
        slot.last = undefined;
        span.textContent = "…";
        span.dataset.value = "";
        span.style.borderBottomColor = "transparent";
        continue;
      }
      const text = fixed(v, decimals[slot.key]);
      setText(span, slot.paren && text[0] === "−" ? `(${text})` : text);
      if (v === slot.last && slot.cellMax === cellMax) continue; // same number: its value, title and colour stand
      slot.last = v;
      slot.cellMax = cellMax;
      span.dataset.value = String(v);
      span.title = held.has(slot.key) ? `${v}, held by hand` : String(v);
      span.style.borderBottomColor = colourOf(slot.key, v, cellMax);
    }
  }

  /** Show or hide "→ held" after a slot's number (made the first time a number there is held). */
  _markHeld(slot, on) {
    slot.span.classList.toggle("held", on);
    if (!on && !slot.tag) return;
    if (!slot.tag) {
      slot.tag = el("span", { class: "held-tag", "data-testid": "held-tag", text: " → held" });
      slot.span.after(slot.tag);
    }
    slot.tag.hidden = !on;
  }
}
