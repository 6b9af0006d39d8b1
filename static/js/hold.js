/**
 * Hold a unit from the diagram, and what is held where. Clicking a gate's box or op in the diagram (C's +, h's ×,
 * the σ and tanh boxes), or Enter / Space on it, opens a small menu: "Hold unit 118's C at 0.532 from t = 12"
 * (the value the unit has there, editable; hold at, scale by, zero, or patch from another text: the values a
 * plain run of that text gives the unit at the same steps; from and to steps), which adds the intervention to the
 * state's list once the server has checked it (POST /api/trace/check: a refusal, such as a source text the
 * vocabulary cannot read, stays in the menu in the server's words); Escape or Cancel closes it and gives the focus
 * back to the part. The page then traces the held run (the live socket carries the interventions) and the
 * server's reply says what it held (state.heldRuns: its "intervened", steps resolved): heldKeys and heldUnits read
 * that for the views that mark held values (the diagram, the step cards). Nothing here computes a value: the
 * menu's number is the server's.
 */

import { directionsOf } from "./cards.js";
import { el } from "./format.js";
import { checkTrace } from "./api.js";
import { describe } from "./intervene.js";

/** Significant digits of the value the menu starts with (the unit's value at t: holding it there changes ~nothing). */
const VALUE_DIGITS = 6;
/** What each operation is called in the menu. */
const OPS = { set: "hold at", scale: "scale by", zero: "zero", patch: "patch from another text" };
/** Rows of the patch's source text box. */
const SOURCE_ROWS = 3;

/** The menu's "to t =" (the last step held, as typed) as the server's exclusive end; null: to the end. */
function exclusiveEnd(typed) {
  if (typed.trim() === "") return null;
  const last = Number(typed);
  return Number.isFinite(last) ? Math.round(last) + 1 : NaN;
}

/** Whether the page can hold `card`'s units: a forward text model (the server runs interventions on those only). */
export function canHold(card) {
  return Boolean(card) && card.input !== "vectors" && !directionsOf(card).includes("backward");
}

/** The keys of the selected unit held at step t (its gates, and c_prev / h_prev when C / h was held at t − 1):
 *  the values the diagram and the cards draw as set by hand. */
export function heldKeys(state, t) {
  const out = new Set();
  if (!state.heldRuns.length) return out;
  for (const r of state.heldAt(state.layer, t)) if (r.units.includes(state.unit)) out.add(r.gate);
  if (t > 0) {
    for (const r of state.heldAt(state.layer, t - 1)) {
      if (!r.units.includes(state.unit)) continue;
      if (r.gate === "c") out.add("c_prev");
      if (r.gate === "h") out.add("h_prev");
    }
  }
  return out;
}

/** Every unit of the selected layer held at step t, per gate ({gate: Set of units}), and held at t − 1 as
 *  C_{t−1} / h_{t−1} ("c_prev", "h_prev": the values step t reads): the strips' marks. */
export function heldUnits(state, t) {
  const out = {};
  const add = (key, units) => { for (const u of units) (out[key] ||= new Set()).add(u); };
  for (const r of state.heldAt(state.layer, t)) add(r.gate, r.units);
  if (t > 0) for (const r of state.heldAt(state.layer, t - 1)) if (PREV[r.gate]) add(PREV[r.gate], r.units);
  return out;
}

/** The diagram's name for a gate's value one step back, where it draws one. */
const PREV = { c: "c_prev", h: "h_prev" };

/** The small menu the diagram opens on a part: one intervention for the selected unit, from step t on. */
export class HoldMenu {
  /** host: where the menu sits (document.body: it is placed in page coordinates, under the part or button); name:
   *  what its elements' ids and test ids start with (a second menu on the page, run b's in side.js, has its own). */
  constructor(host, state, name = "hold") {
    this._host = host;
    this._state = state;
    this._anchor = null;
    this._gate = null;
    this._asking = null; // the server's check of what Hold would add (an AbortController), while it runs
    this._lastSource = null; // the last patch's source text held from this menu
    const ids = (k) => `${name}-menu-${k}`;
    const tid = (k) => `${name}-${k}`;
    this.title = el("p", { class: "hold-title", id: ids("title"), "data-testid": tid("title") });
    this.op = el("select", { id: ids("op"), "data-testid": tid("op") });
    for (const [value, text] of Object.entries(OPS)) this.op.append(new Option(text, value));
    this.value = el("input", { id: ids("value"), type: "number", step: "any", "data-testid": tid("value") });
    this.source = el("textarea", {
      id: ids("source"), rows: String(SOURCE_ROWS), autocomplete: "off", spellcheck: "false", "data-testid": tid("source"),
      "aria-describedby": ids("source-note"),
    });
    this.sourceNote = el("span", { class: "hold-note", id: ids("source-note"), "data-testid": tid("source-note") });
    this.from = el("input", { id: ids("from"), type: "number", min: "0", step: "1", inputmode: "numeric", "data-testid": tid("from") });
    this.to = el("input", {
      id: ids("to"), type: "number", min: "0", step: "1", inputmode: "numeric", placeholder: "end", "data-testid": tid("to"),
    });
    this.error = el("p", { class: "hold-error", role: "alert", "data-testid": tid("error"), hidden: true });
    this.apply = el("button", { type: "submit", class: "primary", "data-testid": tid("apply"), text: "Hold" });
    this.cancel = el("button", { type: "button", class: "mini", "data-testid": tid("cancel"), text: "Cancel" });
    this.valueCtl = el("span", { class: "ctl" }, el("label", { for: ids("value"), text: "value" }), this.value);
    this.sourceCtl = el(
      "span",
      { class: "ctl hold-source" },
      el("label", { for: ids("source"), text: "the values of a plain run of the text" }),
      this.source,
      this.sourceNote,
    );
    this.form = el(
      "form",
      { class: "hold-form" },
      this.title,
      el("span", { class: "ctl" }, el("label", { for: ids("op"), text: "Do" }), this.op),
      this.valueCtl,
      this.sourceCtl,
      el("span", { class: "ctl" }, el("label", { for: ids("from"), text: "from t =" }), this.from),
      el("span", { class: "ctl" }, el("label", { for: ids("to"), text: "to t =" }), this.to),
      this.error,
      el("span", { class: "hold-buttons" }, this.apply, this.cancel),
    );
    this.root = el("div", { class: "hold-menu", role: "dialog", "aria-labelledby": ids("title"), "data-testid": tid("menu"), hidden: true }, this.form);
    host.append(this.root);
    this.form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this._hold();
    });
    this.cancel.addEventListener("click", () => this.close());
    this.op.addEventListener("change", () => {
      if (this.op.value === "scale") this.value.value = "1";
      else if (this.op.value === "set") this.value.value = this._shown();
      this._describe();
      if (this._anchor) this._place(this._anchor); // its height changed with the fields
      if (this.op.value === "patch") this._selectStep();
    });
    for (const input of [this.value, this.source, this.from, this.to]) input.addEventListener("input", () => this._describe());
    this.source.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) this.form.requestSubmit(); // Enter alone: a new line
    });
    this.root.addEventListener("keydown", (ev) => {
      if (ev.key !== "Escape") return;
      ev.stopPropagation(); // the menu's Escape, not the page's
      this.close();
    });
    document.addEventListener("pointerdown", (ev) => {
      if (!this.root.hidden && !this.root.contains(ev.target) && !this._anchor?.contains(ev.target)) this.close(false);
    });
    state.subscribe((changed) => {
      if (["model", "unit", "layer"].some((k) => changed.has(k))) this.close(false); // it was about another unit
    });
  }

  /** Whether the menu is open. */
  get isOpen() {
    return !this.root.hidden;
  }

  /** Open the menu for `gate` (a part of the diagram that is a gate key; null: C, or h for a GRU or RNN) beside
   *  `anchor` (the part's element, or the unit panel's button). Returns whether it opened. */
  open(gate, anchor) {
    const s = this._state;
    gate ??= s.card?.gates.includes("c") ? "c" : "h";
    if (!canHold(s.card) || !s.card.gates.includes(gate) || !s.T) return false;
    this._asking?.abort();
    this._gate = gate;
    this._anchor = anchor;
    this.op.value = "set";
    this.value.value = this._shown();
    this.source.value = this._sourceGuess();
    this.from.value = String(s.t);
    this.from.max = String(s.T - 1);
    this.to.value = "";
    this.to.max = String(s.T - 1);
    this._say(null);
    this._describe();
    this.root.hidden = false;
    this._place(anchor);
    this.value.focus();
    this.value.select();
    return true;
  }

  /** Close the menu; `refocus`: give the focus back to the part it was opened on. */
  close(refocus = true) {
    if (this.root.hidden) return;
    this._asking?.abort();
    this._asking = null;
    this.root.hidden = true;
    const anchor = this._anchor;
    this._anchor = null;
    if (refocus) anchor?.focus();
  }

  /** The selected unit's value of the gate at t, as the server sent it. */
  _current() {
    const s = this._state;
    const exact = s.currentLines()?.[this._gate]?.[s.t];
    if (typeof exact === "number") return exact;
    const row = s.trace.layers[s.layer]?.[this._gate]?.row(s.t);
    return row ? row[s.unit] : null;
  }

  /** The value at t as the menu starts with it: the server's, to VALUE_DIGITS significant digits. */
  _shown() {
    const v = this._current();
    return typeof v === "number" && Number.isFinite(v) ? String(Number(v.toPrecision(VALUE_DIGITS))) : "0";
  }

  /** The text a patch starts from: the last one patched from (this menu's, else the page's holds, a link's say),
   *  since a researcher patches unit after unit from one "corrupted" text; else the page's own text, to be changed
   *  where it matters (_selectStep selects step t's character): a minimal pair, the usual activation patching. */
  _sourceGuess() {
    const s = this._state;
    const held = s.interventions.filter((iv) => iv.op === "patch" && typeof iv.source_text === "string").at(-1);
    return this._lastSource ?? held?.source_text ?? s.text;
  }

  /** With the page's own text in the box and a character model, select step t's character (typing replaces it). */
  _selectStep() {
    const s = this._state;
    const own = this.source.value === s.text && s.card?.tokenizer === "char" && s.T === s.text.length;
    this.sourceNote.textContent = own
      ? `This is your text: change it (step t = ${s.t}'s character is selected) to patch from the changed one.`
      : "";
    if (!own) return;
    this.source.focus();
    this.source.setSelectionRange(s.t, s.t + 1);
  }

  _intervention() {
    const s = this._state;
    const from = Math.max(0, Math.round(Number(this.from.value || 0)));
    return s.holdOf({
      gate: this._gate, op: this.op.value, value: Number(this.value.value || 0), source: this.source.value, from, to: exclusiveEnd(this.to.value),
    });
  }

  /** The title says what the menu would do: "Hold unit 118's C at 0.532 from t = 12". */
  _describe() {
    const op = this.op.value;
    this.valueCtl.hidden = op === "zero" || op === "patch";
    this.sourceCtl.hidden = op !== "patch";
    this.apply.textContent = op === "patch" ? "Patch" : "Hold";
    const iv = this._intervention();
    const words = describe(Number.isFinite(iv.to) ? iv : { ...iv, to: undefined });
    this.title.textContent = words[0].toUpperCase() + words.slice(1);
    this.apply.setAttribute("aria-label", `${this.title.textContent}: run the model with it`);
    if (this.source.value !== this._state.text) this.sourceNote.textContent = "";
  }

  /** The server's refusal of what Hold would add, in the menu (null: none). */
  _say(message) {
    this.error.hidden = !message;
    this.error.textContent = message || "";
  }

  async _hold() {
    const s = this._state;
    const iv = this._intervention();
    if (iv.op !== "zero" && iv.op !== "patch" && !Number.isFinite(iv.value)) {
      this.value.setCustomValidity("Type a number");
      this.value.reportValidity();
      return;
    }
    this.value.setCustomValidity("");
    if (iv.to !== undefined && !Number.isFinite(iv.to)) {
      this.to.setCustomValidity("Type a step, or leave it empty for the end");
      this.to.reportValidity();
      return;
    }
    this.to.setCustomValidity("");
    // the server checks the list as the socket will run it (a patch's text read by the vocabulary, long enough,
    // within the server's size): a refusal stays in the menu, in the server's words, and nothing is held
    this._asking?.abort();
    const ctl = new AbortController();
    this._asking = ctl;
    this.apply.disabled = true;
    this._say(null);
    try {
      await checkTrace(s.model, s.text, [...s.interventions, iv], ctl.signal);
    } catch (e) {
      if (e.name === "AbortError") return;
      this._say(`Not held: ${e.message}`);
      (iv.op === "patch" && /source_text/.test(e.message) ? this.source : this.from).focus();
      return;
    } finally {
      if (this._asking === ctl) this._asking = null;
      this.apply.disabled = false;
    }
    if (ctl.signal.aborted) return;
    if (iv.op === "patch") this._lastSource = iv.source_text;
    s.setInterventions([...s.interventions, iv]);
    this.close();
  }

  /** Under the part, inside the page's width; above it when it fits there and not below (a patch's text box
   *  makes the menu tall). */
  _place(anchor) {
    const at = anchor.getBoundingClientRect();
    const w = this.root.offsetWidth;
    const h = this.root.offsetHeight;
    const page = document.documentElement.clientWidth;
    const left = Math.max(4, Math.min(at.left + at.width / 2 - w / 2, page - w - 4));
    const above = at.bottom + 6 + h > innerHeight && at.top - 6 - h >= 0;
    this.root.style.left = `${Math.round(left + scrollX)}px`;
    this.root.style.top = `${Math.round((above ? at.top - 6 - h : at.bottom + 6) + scrollY)}px`;
  }
}

/** A part's accessible name with what is held there: "forget gate: f = σ(…), held by hand at this step". */
export function heldName(title, held) {
  return held ? `${title} (held by hand at this step)` : title;
}

/** The gate a part holds ("c" for C's +, "h" for h's ×, a box's gate), or null: that part is not a gate. */
export function gateOfPart(card, part) {
  return card?.gates.includes(part) ? part : null;
}
