/**
 * The guided story: a panel of short chapters (GET /api/story: each a page state and two sentences whose numbers the
 * server measured). A chapter sets the page's own state (state.setChapter: model, text, layer, unit, t and the gate
 * lit); the views follow as they do for any change. Next / Back walk the chapters, "Leave the tour" closes the panel
 * and keeps the page as the chapter set it; the chapter is in the URL (chapter=...), so a link opens on it.
 */

import { getStory } from "./api.js";

export class Story {
  /** els: {root (the panel), start (the "Take the tour" button), count, title, words, prev, next, close,
   *  target (the element brought into view when a chapter opens: the diagram), input (the text box: brought into view
   *  and focused by a chapter that lights nothing, "now type your own")} */
  constructor(els, state) {
    this.els = els;
    this.state = state;
    /** The chapters, once loaded (null before; a promise while loading). */
    this._chapters = null;
    this._loading = null;
    els.start.disabled = true; // until the model list is in: a chapter names its model
    els.start.addEventListener("click", () => this._open(0));
    els.next.addEventListener("click", () => this._step(1));
    els.prev.addEventListener("click", () => this._step(-1));
    els.close.addEventListener("click", () => state.setChapter(null));
    state.subscribe((changed) => {
      if (changed.has("cards")) els.start.disabled = !state.cards.length;
      if (changed.has("chapter")) this._onChapter();
    });
  }

  /** Load the chapters once. */
  _load() {
    this._loading ??= getStory().then(
      (chapters) => (this._chapters = chapters),
      (e) => {
        this._loading = null;
        throw e;
      },
    );
    return this._loading;
  }

  _index() {
    return this._chapters ? this._chapters.findIndex((c) => c.id === this.state.chapter) : -1;
  }

  async _open(k) {
    try {
      await this._load();
    } catch (e) {
      this._say(e.message);
      return;
    }
    const ch = this._chapters[Math.max(0, Math.min(this._chapters.length - 1, k))];
    this.state.setChapter(ch);
    const { target, input } = this.els;
    if (ch.highlight || !input) target?.scrollIntoView({ block: "start", behavior: "instant" });
    else {
      scrollTo({ top: 0, behavior: "instant" });
      input.focus({ preventScroll: true });
    }
  }

  _step(dk) {
    const k = this._index() + dk;
    if (k >= this._chapters.length) this.state.setChapter(null); // "Finish": the page stays
    else this._open(k);
  }

  async _onChapter() {
    const id = this.state.chapter;
    const { root } = this.els;
    if (id === null) {
      root.hidden = true;
      delete root.dataset.chapter;
      return;
    }
    try {
      await this._load();
    } catch (e) {
      this._say(e.message);
      return;
    }
    if (this.state.chapter !== id) return; // another chapter, or none, since
    const k = this._index();
    if (k < 0) {
      this._say(`This server's tour has no chapter '${id}'.`);
      return;
    }
    if (this.state.chapterPending) return this._open(k); // a link that named only the chapter: take its state
    this.state.setHighlight(this._chapters[k].highlight ?? null); // a link with the state: light the chapter's gate
    this._render(k);
  }

  _render(k) {
    const { root, count, title, words, prev, next } = this.els;
    const ch = this._chapters[k];
    const n = this._chapters.length;
    root.hidden = false;
    root.dataset.chapter = ch.id;
    count.textContent = `Tour · chapter ${k + 1} of ${n}`;
    title.textContent = ch.title;
    words.textContent = ch.words;
    prev.disabled = k === 0;
    next.textContent = k === n - 1 ? "Finish" : "Next →";
  }

  _say(message) {
    const { root, count, title, words } = this.els;
    root.hidden = false;
    count.textContent = "Tour";
    title.textContent = "The tour is not available";
    words.textContent = message;
  }
}
