/**
 * Choosing what to look at: the model picker (with its card's description), the examples, and the
 * text box. Typing updates state.text on every input event (api.js's LiveSync sends each edit); the
 * model options follow the state's card list.
 */

import { readsText } from "./api.js";
import { CELL_NAME, directionNote, tokenizerText } from "./cards.js";
import { el, showToken } from "./format.js";

/** Characters of an example shown on its button. */
const EXAMPLE_CHARS = 18;

/** Characters from which the text box inserts a paste (or a long insertText edit) itself: the browser's own
 *  editing command lays the whole page out again inside its task (~0.5–1 s of CPU for 20,000 characters, on
 *  a bare page too), where setRangeText takes ~2 ms and leaves the layout to the next frame. Such an insertion is
 *  not on the browser's undo stack (setRangeText empties it): the box keeps its own (BoxHistory), so Ctrl+Z
 *  (Cmd+Z) right after it restores the text before it and Ctrl+Shift+Z / Ctrl+Y brings it back. Typing and short
 *  pastes keep the browser's own path and stack. */
const BIG_INSERT = 2000;
/** Insertions the box's own undo stack remembers. */
const UNDO_DEPTH = 20;

/** Replace [a, b) of the box's text by s, select [selA, selB), and tell the page (an input event, as an edit does). */
function replaceRange(box, s, a, b, selA, selB) {
  box.setRangeText(s, a, b);
  box.setSelectionRange(selA, selB);
  box.dispatchEvent(new Event("input", { bubbles: true }));
}

/**
 * The undo stack of the insertions the page makes itself (the browser has none for them). An entry undoes or redoes
 * only while the box holds exactly the text that entry left (after an undo of the typing since, the browser's own,
 * it does again); else the key is the browser's.
 */
class BoxHistory {
  constructor(box) {
    this.box = box;
    this.undos = []; // {at, removed, inserted, before, after, sel: [start, end] before}
    this.redos = [];
    box.addEventListener("keydown", (ev) => {
      const mod = ev.ctrlKey || ev.metaKey;
      if (!mod || ev.altKey) return;
      const key = ev.key.toLowerCase();
      const redo = (key === "z" && ev.shiftKey) || (key === "y" && ev.ctrlKey && !ev.shiftKey);
      const undo = key === "z" && !ev.shiftKey;
      if ((undo && this.undo()) || (redo && this.redo())) ev.preventDefault();
    });
    box.addEventListener("beforeinput", (ev) => {
      // the browser's Edit menu or context menu (its own stack has typing on it): ours first when it applies
      if (ev.inputType === "historyUndo" && this.undo()) ev.preventDefault();
      else if (ev.inputType === "historyRedo" && this.redo()) ev.preventDefault();
    });
  }

  /** Put s in place of the box's selection, caret after it, remembered for undo; the page is told. */
  insert(s) {
    const box = this.box;
    const [a, b] = [box.selectionStart, box.selectionEnd];
    const before = box.value;
    const inserted = s.replace(/\r\n?/g, "\n");
    replaceRange(box, inserted, a, b, a + inserted.length, a + inserted.length);
    this.undos.push({ at: a, removed: before.slice(a, b), inserted, before, after: box.value, sel: [a, b] });
    if (this.undos.length > UNDO_DEPTH) this.undos.shift();
    this.redos.length = 0;
  }

  /** Undo the last insertion if the box still holds what it left; returns whether it did. */
  undo() {
    const e = this.undos.at(-1);
    if (!e || this.box.value !== e.after) return false;
    this.undos.pop();
    replaceRange(this.box, e.removed, e.at, e.at + e.inserted.length, ...e.sel); // the text it replaced, selected again
    this.redos.push(e);
    return true;
  }

  /** Redo the last undone insertion if the box holds what the undo left; returns whether it did. */
  redo() {
    const e = this.redos.at(-1);
    if (!e || this.box.value !== e.before) return false;
    this.redos.pop();
    const end = e.at + e.inserted.length;
    replaceRange(this.box, e.inserted, e.at, e.at + e.removed.length, end, end);
    this.undos.push(e);
    return true;
  }
}

export class Picker {
  /** els: {model (select), description, more (button), examples, input (textarea), label (the input's),
   *  file (a series file's input), fileBox (its wrapper), ask: {root, text, replace, stay} (the prompt before a
   *  model switch replaces the text)}; hooks: {onFile(file)} for a chosen or dropped file */
  constructor(els, state, hooks = {}) {
    this.els = els;
    this.state = state;
    const { model, input, more, description, file } = els;
    file.addEventListener("change", () => {
      if (file.files.length) hooks.onFile?.(file.files[0]);
      file.value = "";
    });
    input.addEventListener("dragover", (ev) => {
      if (this._series()) ev.preventDefault(); // a series model takes a dropped file
    });
    input.addEventListener("drop", (ev) => {
      if (!this._series() || !ev.dataTransfer?.files.length) return;
      ev.preventDefault();
      hooks.onFile?.(ev.dataTransfer.files[0]);
    });
    model.addEventListener("change", () => this.choose(model.value));
    els.ask.replace.addEventListener("click", () => this._answer(true));
    els.ask.stay.addEventListener("click", () => this._answer(false));
    input.addEventListener("input", () => state.setText(input.value));
    const history = (this.history = new BoxHistory(input));
    input.addEventListener("paste", (ev) => {
      const s = ev.clipboardData?.getData("text/plain");
      if (!s || s.length < BIG_INSERT) return;
      ev.preventDefault();
      history.insert(s);
    });
    input.addEventListener("beforeinput", (ev) => {
      const typed = ev.inputType === "insertText" || ev.inputType === "insertReplacementText";
      if (!typed || !ev.cancelable || !ev.data || ev.data.length < BIG_INSERT) return;
      ev.preventDefault();
      history.insert(ev.data);
    });
    more.addEventListener("click", () => {
      const open = description.classList.toggle("is-open");
      more.textContent = open ? "less" : "more";
      more.setAttribute("aria-expanded", String(open));
    });
    state.subscribe((changed) => this._onChange(changed));
  }

  /**
   * Switch to model `id`, keeping the text typed when the server says the new model reads it; when it cannot,
   * ask in the page before replacing it with the new model's example (an example of the old model is replaced).
   * The one rule for keeping the text: the select and an upload (uploader.js, through main.js) both come here.
   */
  async choose(id) {
    const s = this.state;
    this.els.ask.root.hidden = true;
    this.els.model.value = id; // an upload's choice shows in the select as the person's does
    const card = s.cardOf(id);
    const own = s.text && !s.card?.examples.includes(s.text) && card?.input === "text" && s.card?.input === "text";
    if (!own) return s.choose(id, { keep: false });
    let reads;
    try {
      reads = await readsText(id, s.text);
    } catch {
      reads = { reads: false, why: "the server could not say whether it reads it" };
    }
    if (this.els.model.value !== id) return; // another model chosen since
    if (reads.reads) return s.choose(id, { keep: true });
    this._asking = id;
    const { root, text } = this.els.ask;
    text.textContent = `${id} cannot read your text (${reads.why.replace(/\.$/, "")}). Replace it with ${id}'s first example?`;
    root.hidden = false;
    this.els.ask.replace.focus();
  }

  /** The prompt's answer: replace the text with the new model's example, or stay on the model shown. */
  _answer(replace) {
    const id = this._asking;
    this._asking = null;
    this.els.ask.root.hidden = true;
    if (replace && id) this.state.choose(id, { keep: false });
    else this.els.model.value = this.state.model;
  }

  /** Mark the text box as one the model cannot read (the server refused it), or clear the mark. */
  markInvalid(invalid) {
    if (invalid) this.els.input.setAttribute("aria-invalid", "true");
    else this.els.input.removeAttribute("aria-invalid");
  }

  /** Fill the model options from every listed card. */
  _showCards() {
    this.els.model.replaceChildren(
      ...this.state.listed.map((c) => {
        // listed, but its files or card do not read: shown with the server's reason, never chosen
        if (c.available === false) return el("option", { value: c.id, text: `${c.id} (unavailable: ${c.problem})`, disabled: true });
        const way = c.direction === "bidirectional" ? "bidirectional " : c.direction === "reverse" ? "reverse " : "";
        const size = `${c.layers > 1 ? `${c.layers} layers × ` : ""}${way}${c.hidden_size} units`;
        const name = `${c.id} — ${CELL_NAME[c.cell] || c.cell}, ${size}`;
        // a vector model reads a series: pasted as CSV, or a .csv/.npy file the server reads
        if (c.input !== "text") return el("option", { value: c.id, text: `${name}, series input` });
        return el("option", { value: c.id, text: name });
      }),
    );
  }

  _onChange(changed) {
    const s = this.state;
    if (changed.has("cards")) this._showCards();
    if (changed.has("model")) {
      this.els.ask.root.hidden = true; // the model changed another way (a link, the tour)
      this._build();
    }
    if (changed.has("text") && this.els.input.value !== s.text) this.els.input.value = s.text;
  }

  /** Whether the model shown reads a series (CSV rows) rather than text. */
  _series() {
    return this.state.card?.input === "vectors";
  }

  _build() {
    const { model, description, examples, more, input, label, fileBox } = this.els;
    const card = this.state.card;
    model.value = card.id;
    const series = this._series();
    fileBox.hidden = !series;
    label.textContent = series ? `Series the model reads (CSV: a row a step, ${card.input_size} column${card.input_size === 1 ? "" : "s"})` : "Text the model reads";
    input.placeholder = series
      ? "Paste CSV rows (a header line is optional), or drop a .csv / .npy file here: every edit runs the network"
      : "Type here: every keystroke runs the network";
    const notes = [directionNote(card), tokenizerText(card)].filter(Boolean);
    description.textContent = [card.description || (notes.length ? "" : "No description."), ...notes].filter(Boolean).join(" ");
    description.classList.remove("is-open");
    more.textContent = "more";
    more.setAttribute("aria-expanded", "false");
    requestAnimationFrame(() => (more.hidden = description.scrollHeight <= description.clientHeight + 2));
    examples.replaceChildren(
      ...card.examples.map((text, k) => {
        const shown = showToken(text.length > EXAMPLE_CHARS ? `${text.slice(0, EXAMPLE_CHARS)}` : text);
        const visible = text.length > EXAMPLE_CHARS ? `${shown}…` : shown;
        return el("button", {
          type: "button",
          class: "example",
          "data-testid": "example",
          title: text, // the whole text (its description); the name holds what the button shows, as speech input needs
          "aria-label": `Example ${k + 1}: ${visible}`,
          text: visible,
          onclick: () => this.state.setText(text, { follow: true }),
        });
      }),
    );
  }
}
