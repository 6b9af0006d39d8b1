/**
 * The time and unit controls: the scrubber over 0..T−1 with the current token, play/pause at a
 * chosen speed, the unit (a number, or one of the card's known units) and the layer.
 * Keys when the text box does not have focus: ← → one step, Home/End the ends, Space plays/pauses.
 */

import { knownUnits, unitsOf } from "./cards.js";
import { el, setText, showToken } from "./format.js";

/** Playback speeds offered, in steps a second. */
const SPEEDS = [2, 5, 10, 25, 50];
/** Speed selected at first (steps a second). */
const DEFAULT_SPEED = 10;

/** Room the known units' select keeps for its drop-down arrow beside its text (px). */
const KNOWN_ARROW = 24;
/** A canvas context that measures the select's text (made on first use). */
let _measure = null;

export class Scrubber {
  /** els: {range, timestep, play, speed, unit, known, layer}; text: the text box (keys go to it when focused). */
  constructor(els, state) {
    this.els = els;
    this.state = state;
    this._timer = 0;
    this._known = [];
    const { range, play, speed, unit, known, layer } = els;
    for (const s of SPEEDS) speed.append(el("option", { value: String(s), text: `${s} steps/s`, selected: s === DEFAULT_SPEED }));
    range.addEventListener("input", () => state.setT(Number(range.value)));
    play.addEventListener("click", () => this.toggle());
    speed.addEventListener("change", () => this._playing() && this._start());
    unit.addEventListener("input", () => {
      if (unit.value === "" || !Number.isFinite(Number(unit.value))) return;
      state.select({ unit: Number(unit.value) });
    });
    unit.addEventListener("change", () => this._showUnit()); // snap an out-of-range entry back
    known.addEventListener("change", () => {
      const k = this._known[Number(known.value)];
      if (k) state.select({ unit: k.unit, layer: k.layer });
    });
    layer.addEventListener("change", () => state.select({ layer: Number(layer.value) }));
    document.addEventListener("keydown", (ev) => this._key(ev));
    state.subscribe((changed) => this._onChange(changed));
  }

  _onChange(changed) {
    if (changed.has("model") || changed.has("card")) this._build();
    if (changed.has("trace") || changed.has("t") || changed.has("model")) this._showT();
    if (changed.has("unit") || changed.has("layer") || changed.has("model") || changed.has("card")) this._showUnit();
  }

  _build() {
    const card = this.state.card;
    const { unit, known, layer } = this.els;
    unit.max = String(unitsOf(card) - 1);
    layer.replaceChildren(...Array.from({ length: card.layers }, (_, l) => el("option", { value: String(l), text: `layer ${l}` })));
    layer.disabled = card.layers <= 1;
    layer.closest(".ctl").hidden = card.layers <= 1; // one layer: nothing to choose, and the row keeps its room
    layer.title = card.layers <= 1 ? "This model has one layer" : `Layers 0 to ${card.layers - 1}`;
    this._known = knownUnits(card);
    known.replaceChildren(
      el("option", { value: "", text: this._known.length ? "— pick one —" : "none listed" }),
      ...this._known.map((k, n) =>
        el("option", { value: String(n), text: `${k.name} · ${card.layers > 1 ? `layer ${k.layer} ` : ""}unit ${k.unit}${k.note ? ` · ${k.note}` : ""}` }),
      ),
    );
    known.disabled = this._known.length === 0;
    this.stop();
  }

  _showT() {
    const s = this.state;
    const T = s.T;
    const { range, timestep } = this.els;
    range.max = String(Math.max(0, T - 1));
    range.value = String(s.t);
    range.disabled = T === 0;
    timestep.dataset.t = String(s.t);
    if (T === 0) {
      timestep.textContent = "t = –";
    } else {
      const tok = showToken(s.trace.tokens[s.t]);
      // t counts from 0 as the equations do; in words, steps count from 1 ("t = 81, step 82 of 82"); a step
      // rewrites the two texts in place
      this._stepText ??= document.createTextNode("");
      this._tokSpan ??= el("span", { class: "tok" });
      if (timestep.firstChild !== this._stepText || timestep.lastChild !== this._tokSpan) timestep.replaceChildren(this._stepText, this._tokSpan);
      this._stepText.data = `t = ${s.t}, step ${s.t + 1} of ${T}  `;
      setText(this._tokSpan, `'${tok}'`);
    }
    range.setAttribute("aria-valuetext", T ? `t = ${s.t}, step ${s.t + 1} of ${T}, token ${showToken(s.trace.tokens[s.t])}` : "no steps");
  }

  _showUnit() {
    const s = this.state;
    const { unit, known, layer } = this.els;
    if (document.activeElement !== unit || Number(unit.value) !== s.unit) unit.value = String(s.unit);
    unit.dataset.unit = String(s.unit);
    layer.value = String(s.layer);
    layer.dataset.layer = String(s.layer);
    const k = this._known.findIndex((x) => x.unit === s.unit && x.layer === s.layer);
    known.value = k >= 0 ? String(k) : "";
    this._fitKnown();
  }

  /** The known units' select says its choice whole: in its title, and as wide as that choice (scrubber.css caps it
   *  at the row's width; a phone gives it a row of its own). */
  _fitKnown() {
    const known = this.els.known;
    const text = known.selectedOptions[0]?.text ?? "";
    known.title = text;
    const cs = getComputedStyle(known);
    _measure ??= document.createElement("canvas").getContext("2d");
    _measure.font = `${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
    const box = ["paddingLeft", "paddingRight", "borderLeftWidth", "borderRightWidth"].reduce((w, p) => w + parseFloat(cs[p]), 0);
    known.style.setProperty("--known-width", `${Math.ceil(_measure.measureText(text).width + box + KNOWN_ARROW)}px`);
  }

  _playing() {
    return this._timer !== 0;
  }

  /** Play or pause. */
  toggle() {
    if (this._playing()) this.stop();
    else this._start(true);
  }

  _start(fromButton = false) {
    const s = this.state;
    if (s.T < 2) return;
    clearInterval(this._timer);
    if (fromButton && s.t >= s.T - 1) s.setT(0);
    const speed = Number(this.els.speed.value) || DEFAULT_SPEED;
    this._timer = setInterval(() => {
      if (s.t >= s.T - 1) return this.stop();
      s.setT(s.t + 1);
    }, 1000 / speed);
    this._showPlay();
  }

  /** Pause. */
  stop() {
    clearInterval(this._timer);
    this._timer = 0;
    this._showPlay();
  }

  _showPlay() {
    const { play } = this.els;
    const on = this._playing();
    if (on === this._shownPlaying) return; // each arrow key stops play: unchanged, the button is left alone
    this._shownPlaying = on;
    play.setAttribute("aria-pressed", String(on));
    play.setAttribute("aria-label", on ? "Pause" : "Play");
    play.title = on ? "Pause (Space)" : "Play through the steps (Space)";
    play.textContent = on ? "❚❚" : "▶";
  }

  _key(ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const target = ev.target;
    const tag = target?.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT" || target?.isContentEditable) return;
    if (tag === "INPUT" && target.type !== "range") return;
    const s = this.state;
    const onRange = target === this.els.range;
    switch (ev.key) {
      case "ArrowLeft":
      case "ArrowRight":
        if (onRange) return; // the range input moves itself
        ev.preventDefault();
        this.stop();
        s.setT(s.t + (ev.key === "ArrowRight" ? 1 : -1));
        break;
      case "Home":
      case "End":
        if (onRange) return;
        ev.preventDefault();
        this.stop();
        s.setT(ev.key === "Home" ? 0 : s.T - 1);
        break;
      case " ":
        if (tag === "BUTTON" || tag === "A") return; // Space presses the focused button
        ev.preventDefault();
        this.toggle();
        break;
      default:
    }
  }
}
