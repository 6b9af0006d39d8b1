/**
 * Your own model: a dialog that uploads a weight file (PyTorch, Keras, ONNX or gatescope's own, with
 * an optional vocabulary) and shows the upload's progress, then the server's verdict; and a button
 * that removes an uploaded model. Shown only when the server takes uploads (data-uploads on <body>).
 * The file types offered are the server's: the template writes them into the file input's `accept`.
 *
 * After an upload or a removal the state takes the server's new model list; an added text model is
 * chosen at once, a removed one gives way to `defaultModel`.
 */

import { ApiError, deleteModel, listModels, uploadModel } from "./api.js";

export class Uploader {
  /**
   * els: {open (button), dialog, form, file, vocab, name, status, progress, submit, cancel, remove (button)}
   * options: defaultModel (shown after a removal); onMessage(text | null, level) for the page's banner.
   */
  constructor(els, state, { defaultModel = null, onMessage = () => {} } = {}) {
    this.els = els;
    this.state = state;
    this._defaultModel = defaultModel;
    this._message = onMessage;
    els.open.addEventListener("click", () => this._open());
    els.cancel.addEventListener("click", () => els.dialog.close());
    els.form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this._upload();
    });
    els.remove.addEventListener("click", () => this._remove());
    state.subscribe((changed) => {
      if (changed.has("model")) this._showRemove();
    });
  }

  _open() {
    const { dialog, form, status, progress, submit } = this.els;
    form.reset();
    status.textContent = "";
    status.classList.remove("is-error");
    progress.hidden = true;
    submit.disabled = false;
    dialog.showModal();
  }

  async _upload() {
    const { file, vocab, name, progress, submit, dialog } = this.els;
    if (!file.files.length) return this._say("Choose a weight file first.", true);
    submit.disabled = true;
    progress.hidden = false;
    progress.removeAttribute("value"); // indeterminate until the first progress event
    const onProgress = (sent, total) => {
      progress.max = total || 1;
      progress.value = sent;
      if (sent >= total) {
        progress.removeAttribute("value");
        this._say("Uploaded. The server is reading the file…");
      } else {
        this._say(`Uploading… ${Math.round((100 * sent) / (total || 1))}%`);
      }
    };
    let card;
    try {
      const { head, headAt, labels } = this.els; // what the output means: only what the person chose is sent
      const output = { head: head?.value || "", head_at: headAt?.value || "", labels: labels?.value.trim() || "" };
      card = await uploadModel(file.files[0], vocab.files[0] || null, name.value.trim(), onProgress, output);
    } catch (e) {
      progress.hidden = true;
      submit.disabled = false;
      return this._say(e instanceof ApiError ? e.message : `The upload failed: ${e.message}`, true);
    }
    dialog.close();
    return this._added(card);
  }

  async _added(card) {
    try {
      this.state.setCards(await listModels());
    } catch (e) {
      return this._message(e.message);
    }
    if (card.input !== "text") {
      return this._message(
        `Added '${card.id}', a model that reads vectors: trace it with POST /api/trace {"model": "${card.id}", "vectors": [...]}.`,
        "warning",
      );
    }
    this._message(null);
    return this.state.choose(card.id);
  }

  async _remove() {
    const card = this.state.card;
    if (!card || card.origin !== "uploaded") return;
    if (!confirm(`Remove the uploaded model '${card.id}' from this server?`)) return;
    try {
      await deleteModel(card.id);
      this.state.setCards(await listModels());
    } catch (e) {
      this._message(e.message);
      return;
    }
    const cards = this.state.cards;
    this.state.choose(cards.find((c) => c.id === this._defaultModel)?.id || cards[0].id);
    this._message(`Removed '${card.id}'.`, "info");
  }

  _showRemove() {
    const card = this.state.card;
    this.els.remove.hidden = !(card && card.origin === "uploaded");
  }

  _say(text, error = false) {
    this.els.status.textContent = text;
    this.els.status.classList.toggle("is-error", error);
  }
}
