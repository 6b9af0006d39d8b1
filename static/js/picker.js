/**
 * Choosing what to look at: the model picker (with its card's description), the examples, and the
 * text box. Typing updates state.text on every input event; main.js sends each edit.
 */

import { knownUnits } from "./scrubber.js";
import { el, showToken } from "./format.js";

/** How the cell types read in the picker. */
export const CELL_NAME = { lstm: "LSTM", peephole: "peephole LSTM", coupled: "coupled-gate LSTM", gru: "GRU", rnn: "plain RNN" };
/** Characters of an example shown on its button. */
const EXAMPLE_CHARS = 18;

/** The unit to show first for a card: its most telling known unit, else 0. */
export function defaultUnit(card) {
  const known = knownUnits(card);
  if (!known.length) return { unit: 0, layer: 0 };
  const best = known.reduce((a, b) => (b.score > a.score ? b : a));
  return { unit: best.unit, layer: best.layer };
}

export class Picker {
  /** els: {model (select), description, more (button), examples, input (textarea)} */
  constructor(els, state) {
    this.els = els;
    this.state = state;
    const { model, input, more, description } = els;
    model.addEventListener("change", () => this.choose(model.value));
    input.addEventListener("input", () => state.setText(input.value));
    more.addEventListener("click", () => {
      const open = description.classList.toggle("is-open");
      more.textContent = open ? "less" : "more";
      more.setAttribute("aria-expanded", String(open));
    });
    state.subscribe((changed) => this._onChange(changed));
  }

  /** Fill the model options from the cards. */
  setCards(cards) {
    this.els.model.replaceChildren(
      ...cards.map((c) => {
        const size = `${c.layers > 1 ? `${c.layers} layers × ` : ""}${c.hidden_size} units`;
        const name = `${c.id} — ${CELL_NAME[c.cell] || c.cell}, ${size}`;
        // a vector model reads numbers, not typed text: the page cannot drive it (POST /api/trace can)
        if (c.input !== "text") return el("option", { value: c.id, text: `${name} (vector input: trace it through the API)`, disabled: true });
        return el("option", { value: c.id, text: name });
      }),
    );
  }

  /**
   * Switch model. Your own text stays when the new model reads the same symbols (the same vocabulary
   * size: the recall-* models, to compare cells on one input); otherwise, or when the text is one of
   * the old model's examples, the new model's first example replaces it.
   */
  choose(id) {
    const s = this.state;
    const old = s.card;
    const card = s.cardOf(id);
    if (!card) return;
    const sameSymbols = old && old.vocab === card.vocab && old.input === card.input;
    const keep = s.text && sameSymbols && !old.examples.includes(s.text);
    const text = keep ? s.text : card.examples[0] || "";
    s.setModel(id, { ...defaultUnit(card), text });
  }

  _onChange(changed) {
    const s = this.state;
    if (changed.has("model")) this._build();
    if (changed.has("text") && this.els.input.value !== s.text) this.els.input.value = s.text;
  }

  _build() {
    const { model, description, examples, more } = this.els;
    const card = this.state.card;
    model.value = card.id;
    description.textContent = card.description || "No description.";
    description.classList.remove("is-open");
    more.textContent = "more";
    more.setAttribute("aria-expanded", "false");
    requestAnimationFrame(() => (more.hidden = description.scrollHeight <= description.clientHeight + 2));
    examples.replaceChildren(
      ...card.examples.map((text, k) => {
        const shown = showToken(text.length > EXAMPLE_CHARS ? `${text.slice(0, EXAMPLE_CHARS)}` : text);
        return el("button", {
          type: "button",
          class: "example",
          "data-testid": "example",
          title: text,
          "aria-label": `Example ${k + 1}: ${text}`,
          text: text.length > EXAMPLE_CHARS ? `${shown}…` : shown,
          onclick: () => {
            this.state.follow = true;
            this.state.setText(text);
          },
        });
      }),
    );
  }
}
