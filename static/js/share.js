/**
 * Sharing and downloading what the page shows: "Copy link" puts the view's address (its URL hash:
 * model, layer, t, unit, text) on the clipboard; "Trace JSON" / "Trace CSV" download the server's
 * whole trace of the text, or of a vector model's series (POST /api/trace), captioned with the view (the JSON's
 * "view": {caption, model, text, layer, t, unit}; the CSV's first line, a "# " comment); "Save as page" downloads the view as one
 * HTML file that opens offline (POST /api/page: the trace and the views, at this layer, unit and step; while comparing,
 * run b's beside them).
 */

import { savePage, traceBlob } from "./api.js";
import { captionOf, saveBlob, slug } from "./export.js";

/** How long the copy status stays (ms). */
const STATUS_MS = 2500;

export class Share {
  /** els: {copy, status, json, csv, page}; hooks.onMessage(text | null, level) for the page's banner. */
  constructor(els, state, hooks = {}) {
    this.els = els;
    this.state = state;
    this._message = hooks.onMessage || (() => {});
    els.json.addEventListener("click", () => this._download("json"));
    els.csv.addEventListener("click", () => this._download("csv"));
    els.copy.addEventListener("click", () => this._copyLink());
    els.page.addEventListener("click", () => this._savePage());
    // a saved page holds a text's trace: vector models (a series) have none to save
    state.subscribe((changed) => {
      if (changed.has("model")) els.page.hidden = state.card?.input === "vectors";
    });
  }

  async _savePage() {
    const s = this.state;
    if (!s.tracedText || !s.T) return this._message("There is no trace to save yet.", "info");
    const { page, status } = this.els;
    page.disabled = true;
    status.textContent = "Saving the page…";
    try {
      // the text whose trace the views show (typing may be ahead of it), at the step they show
      const win = s.T > s.windowSize ? { start: s.view.start, size: s.windowSize } : null; // a long text's window
      // while run b is shown beside (the server answered on the pair), the file carries it too
      const vs = s.compare && s.compared?.state?.b ? s.compare : null;
      const blob = await savePage(s.model, s.tracedText, { layer: s.layer, unit: s.unit, t: s.t, win, vs });
      const pair = vs ? `-vs-${s.compared.state.b.model}` : "";
      saveBlob(blob, `${slug(`gatescope-${s.model}${pair}-t${s.t}-unit${s.unit}`)}.html`);
      status.textContent = "Page saved";
      this._message(null);
    } catch (e) {
      status.textContent = "";
      this._message(e.message);
    } finally {
      page.disabled = false;
      setTimeout(() => (status.textContent = ""), STATUS_MS);
    }
  }

  async _download(encoding) {
    const s = this.state;
    if (!s.text) return this._message("There is no text to trace yet.", "info");
    const vectors = s.trace.inputs ? s.trace.inputs.rows : null; // a series: the rows the server read from its CSV
    try {
      const blob = await traceBlob(s.model, s.text, encoding, vectors);
      saveBlob(await this._captioned(blob, encoding), `${slug(`gatescope-${s.model}-trace-t${s.t}-unit${s.unit}`)}.${encoding}`);
      return this._message(null);
    } catch (e) {
      return this._message(e.message);
    }
  }

  /** The server's trace with the view it was saved from: a "view" key first in the JSON, a "# " line atop the CSV. */
  async _captioned(blob, encoding) {
    const s = this.state;
    const caption = captionOf(s);
    const body = await blob.text();
    if (encoding === "csv") return new Blob([`# gatescope: ${caption}\n`, body], { type: "text/csv" });
    const view = { caption, model: s.model, text: s.text, layer: s.layer, t: s.t, unit: s.unit };
    const rest = body.replace(/^\s*\{/, "");
    return new Blob([`{"view": ${JSON.stringify(view)}, `, rest], { type: "application/json" });
  }

  async _copyLink() {
    this.state.writeHash();
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
