/**
 * The guided story: a panel of short chapters (GET /api/story: each a page state and two sentences whose numbers the
 * server measured). A chapter sets the page's own state (state.setChapter: model, text, layer, unit, t and the gate
 * lit); the views follow as they do for any change. Next / Back walk the chapters, "Leave the tour" closes the panel
 * and keeps the page as the chapter set it; the chapter is in the URL (chapter=...), so a link opens on it.
 *
 * A chapter's words are about its state: when the reader changes by hand a part of it the chapter does not leave free
 * (its "free" list: scrubbing t and another unit are; the model or the text, mostly, are not), the panel says "You have
 * left this chapter", with Back to the chapter (its state again), Next and Leave the tour.
 */

/** The parts of the page's state a chapter sets (its "free" list names those the reader may change). */
const PARTS = ["model", "text", "layer", "unit"];

import { getStory } from "./api.js";

export class Story {
  /** els: {root (the panel), start (the "Take the tour" button), count, title, words, prev, next, close, restore (Back
   *  to the chapter, once the reader left it),
   *  input (the text box: brought into view
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
    els.restore.addEventListener("click", () => this._open(this._index()));
    state.subscribe((changed) => {
      if (changed.has("cards")) els.start.disabled = !state.cards.length;
      if (changed.has("chapter")) this._onChapter();
      else if (PARTS.some((p) => changed.has(p))) this._checkLeft();
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
    this._bring = true; // once the chapter shows (the panel may be hidden still): bring it into view
    this.state.setChapter(ch);
  }

  /** Bring the chapter into view: the panel atop the window (the diagram under it), or, for a chapter that lights
   *  nothing ("now type your own"), the page's top with the text box focused. */
  _bringIntoView(ch) {
    this._bring = false;
    const { root, input } = this.els;
    if (ch.highlight || !input) root.scrollIntoView({ block: "start", behavior: "instant" });
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
      delete root.dataset.left;
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
    if (this._bring) this._bringIntoView(this._chapters[k]);
    this._checkLeft();
  }

  /** The parts of the chapter's state the page no longer shows (those its "free" list does not cover). */
  _changed(ch) {
    const s = this.state;
    const free = new Set(ch.free ?? []);
    return PARTS.filter((p) => !free.has(p) && s[p] !== ch[p]);
  }

  /** Say "You have left this chapter" when the reader changed what the chapter set (or the chapter again, when the
   *  page is back on its state). */
  _checkLeft() {
    const k = this._index();
    if (k < 0 || this.state.chapterPending || this.els.root.hidden) return;
    const ch = this._chapters[k];
    const gone = this._changed(ch);
    const left = gone.length > 0;
    if (left === (this.els.root.dataset.left === "true")) return;
    if (!left) {
      this.state.setHighlight(ch.highlight ?? null);
      return this._render(k);
    }
    const { root, words, prev, restore } = this.els;
    root.dataset.left = "true";
    const what = gone.map((p) => (p === "text" ? "the text" : p === "model" ? "the model" : `the ${p}`)).join(" and ");
    words.textContent = `You have left this chapter: you changed ${what}, so its words no longer describe the page. ` +
      "Back to the chapter sets its state again; Next goes on; Leave the tour keeps the page as it is.";
    prev.hidden = true;
    restore.hidden = false;
    this.state.setHighlight(null);
  }

  _render(k) {
    const { root, count, title, words, prev, next } = this.els;
    const ch = this._chapters[k];
    const n = this._chapters.length;
    root.hidden = false;
    root.dataset.chapter = ch.id;
    root.dataset.left = "false";
    prev.hidden = false;
    this.els.restore.hidden = true;
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
