/**
 * Sharing and downloading what the page shows: "Copy link" puts the view's address (its URL hash:
 * model, layer, t, unit, text) on the clipboard; "Trace JSON" / "Trace CSV" download the server's
 * whole trace of the text, or of a vector model's series (POST /api/trace).
 */

import { traceBlob } from "./api.js";
import { saveBlob, slug } from "./export.js";

/** How long the copy status stays (ms). */
const STATUS_MS = 2500;

export class Share {
  /** els: {copy, status, json, csv}; hooks.onMessage(text | null, level) for the page's banner. */
  constructor(els, state, hooks = {}) {
    this.els = els;
    this.state = state;
    this._message = hooks.onMessage || (() => {});
    els.json.addEventListener("click", () => this._download("json"));
    els.csv.addEventListener("click", () => this._download("csv"));
    els.copy.addEventListener("click", () => this._copyLink());
  }

  async _download(encoding) {
    const s = this.state;
    if (!s.text) return this._message("There is no text to trace yet.", "info");
    const vectors = s.trace.inputs ? s.trace.inputs.rows : null; // a series: the rows the server read from its CSV
    try {
      const blob = await traceBlob(s.model, s.text, encoding, vectors);
      saveBlob(blob, `${slug(`gatescope-${s.model}-trace`)}.${encoding}`);
      return this._message(null);
    } catch (e) {
      return this._message(e.message);
    }
  }

  async _copyLink() {
    history.replaceState(null, "", this.state.toHash());
    const { status } = this.els;
    try {
      await navigator.clipboard.writeText(location.href);
      status.textContent = "Link copied";
    } catch {
      status.textContent = "Copy the address bar: it holds this view";
    }
    setTimeout(() => (status.textContent = ""), STATUS_MS);
  }
}
