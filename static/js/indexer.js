/**
 * The corpus index of the model shown: a one-line status in the header ("Index: 1,203 documents, 2.1 M steps
 * of held-out Python" / "Index: building 42%…"), and the "Index a corpus…" dialog, which sends a text, JSON
 * Lines or zip file (up to the server's limit, shown) and follows the build's streamed progress, with a
 * cancel. It keeps state.index (state.setIndex) in step with the server, so the views that read an index
 * learn when one becomes ready.
 *
 * When a model is chosen its status is asked for (a bundled model's first ask starts its held-out build on
 * the server); while it builds, the progress stream (JSON Lines) updates the line and the dialog.
 */

import { ApiError, deleteIndex, followIndex, indexStatus, startIndex } from "./api.js";

/** Seconds before asking again after the progress stream broke off (the server restarting, say). */
const RETRY_SECONDS = 3;

const _int = new Intl.NumberFormat("en");

/** 2100000 -> "2.1 M", 12345 -> "12,345". */
export function amount(n) {
  if (n === null || n === undefined) return "?";
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} M`;
  return _int.format(n);
}

/** Seconds as a person says them: "about 12 s", "about 3 min". */
function duration(s) {
  if (s === null || s === undefined) return "";
  return s < 90 ? `about ${Math.max(1, Math.round(s))} s` : `about ${Math.round(s / 60)} min`;
}

/** The status line's words for a status. */
export function describe(st, canIndex = true) {
  if (!st) return "";
  if (st.state === "ready") {
    const i = st.info || {};
    return `Index: ${amount(i.docs)} document${i.docs === 1 ? "" : "s"}, ${amount(i.steps)} steps of ${i.corpus}`;
  }
  if (st.state === "building") {
    const p = st.progress || {};
    if (st.waiting) return `Index: waiting for another build to finish (${st.corpus})`;
    const left = Number.isFinite(p.eta) ? `, ${duration(p.eta)} left` : "";
    return `Index: building ${Math.floor(p.percent || 0)}% of ${st.corpus}${left}…`;
  }
  if (st.state === "failed") return `Index: the last build failed: ${st.error}`;
  return canIndex ? "No index yet: “Index a corpus…” builds one" : "No index for this model on this server";
}

/** The dialog's progress line: documents, characters and time left. */
function progressWords(st) {
  const p = st.progress || {};
  if (st.waiting) return "Waiting for another index build to finish…";
  const docs = p.total_docs ? `${amount(p.docs)} of ${amount(p.total_docs)} documents · ` : "";
  const left = Number.isFinite(p.eta) ? ` · ${duration(p.eta)} left` : "";
  return `${docs}${amount(p.chars)} of ${amount(p.total_chars)} characters${left}`;
}

export class Indexer {
  /**
   * els: {open (button), dialog, form, file, per (checkbox), carry (checkbox), progress, status, submit,
   *       cancel, line (the header's status line)}
   * options: onMessage(text | null, level) for the page's banner.
   */
  constructor(els, state, { onMessage = () => {} } = {}) {
    this.els = els;
    this.state = state;
    this._message = onMessage;
    this._follow = null; // the AbortController of the progress stream being read
    this._running = false; // the dialog's own job is under way
    els.open.addEventListener("click", () => this._open());
    els.cancel.addEventListener("click", () => this._cancel());
    els.dialog.addEventListener("close", () => (this._running = false));
    els.form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this._start();
    });
    state.subscribe((changed) => {
      if (changed.has("model")) this._ask();
      if (changed.has("index")) this._show();
    });
  }

  /** Ask for the model's status; follow its build if one is under way. */
  async _ask() {
    this._stopFollowing();
    const id = this.state.model;
    if (!id) return;
    this.els.line.textContent = "";
    let st;
    try {
      st = await indexStatus(id);
    } catch (e) {
      if (this.state.model === id) this.els.line.textContent = `Index: ${e.message}`;
      return;
    }
    if (this.state.model !== id) return; // a late answer: following it would stop following the model shown
    this.state.setIndex(st);
    if (st.state === "building") this._followBuild(id);
  }

  /** Read the build's progress stream into state.index until it ends. */
  async _followBuild(id) {
    this._stopFollowing();
    const ctl = new AbortController();
    this._follow = ctl;
    let last;
    try {
      last = await followIndex(id, (st) => this.state.setIndex(st), ctl.signal);
    } catch (e) {
      if (ctl.signal.aborted) return;
      this.els.line.textContent = `Index: ${e.message}; asking again in ${RETRY_SECONDS} s`;
      setTimeout(() => this.state.model === id && !ctl.signal.aborted && this._ask(), RETRY_SECONDS * 1000);
      return;
    }
    if (this._follow === ctl) this._follow = null;
    if (last === null && !ctl.signal.aborted && this.state.model === id) this._ask(); // ended without a word
  }

  _stopFollowing() {
    if (this._follow) this._follow.abort();
    this._follow = null;
  }

  /** The header's line and, while the dialog's job runs, its progress. */
  _show() {
    const st = this.state.index;
    const { line, progress, submit } = this.els;
    line.textContent = describe(st, !this.els.open.hidden);
    line.dataset.state = st?.state || "";
    line.classList.toggle("is-error", st?.state === "failed");
    if (!this._running || !st) return;
    if (st.state === "building") {
      const p = st.progress || {};
      progress.hidden = false;
      if (p.total_chars) {
        progress.max = p.total_chars;
        progress.value = p.chars;
      } else progress.removeAttribute("value");
      this._say(progressWords(st));
      return;
    }
    this._running = false;
    submit.disabled = false;
    this.els.cancel.textContent = "Close";
    if (st.state === "ready") {
      progress.max = 1;
      progress.value = 1;
      const notes = st.info?.notes?.length ? ` (${st.info.notes.join("; ")})` : "";
      this._say(`Ready: ${describe(st).replace(/^Index: /, "")}.${notes}`);
    } else {
      progress.hidden = true;
      this._say(st.state === "failed" ? `The build failed: ${st.error}` : "The index was removed.", true);
    }
  }

  _open() {
    const { dialog, form, status, progress, submit, cancel, title } = this.els;
    form.reset();
    status.textContent = "";
    status.classList.remove("is-error");
    progress.hidden = true;
    submit.disabled = false;
    cancel.textContent = "Cancel";
    if (title) title.textContent = `Index a corpus for ${this.state.model}`;
    this._running = false;
    const building = this.state.index?.state === "building";
    if (building) {
      // a build is under way: show it, and Cancel stops it
      this._running = true;
      submit.disabled = true;
      this._show();
    }
    dialog.showModal();
  }

  async _start() {
    const { file, per, carry, progress, submit } = this.els;
    const id = this.state.model;
    if (!file.files.length) return this._say("Choose a corpus file first.", true);
    submit.disabled = true;
    progress.hidden = false;
    progress.removeAttribute("value");
    this._running = true;
    const onUpload = (sent, total) => {
      if (sent < total) this._say(`Sending the corpus… ${Math.round((100 * sent) / (total || 1))}%`);
      else this._say("Sent. The server is reading the corpus…");
    };
    let st;
    try {
      st = await startIndex(id, file.files[0], { per: per.checked ? "line" : "file", carry: carry.checked }, onUpload);
    } catch (e) {
      this._running = false;
      progress.hidden = true;
      submit.disabled = false;
      return this._say(e instanceof ApiError ? e.message : `The corpus was not sent: ${e.message}`, true);
    }
    this.els.cancel.textContent = "Cancel the build";
    this.state.setIndex(st);
    return this._followBuild(id);
  }

  /** Cancel: stops the dialog's build under way (the server removes what it wrote), else closes. */
  async _cancel() {
    const { dialog } = this.els;
    if (!this._running || this.state.index?.state !== "building") return dialog.close();
    const id = this.state.model;
    this._say("Cancelling…");
    try {
      await deleteIndex(id);
    } catch (e) {
      return this._say(e.message, true);
    }
    this._running = false;
    dialog.close();
    this._message(`Cancelled the index build of '${id}'.`, "info");
    return this._ask();
  }

  _say(text, error = false) {
    this.els.status.textContent = text;
    this.els.status.classList.toggle("is-error", error);
  }
}
