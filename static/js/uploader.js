/**
 * Your own model: a dialog that uploads a weight file (PyTorch, Keras, ONNX or gatescope's own, with
 * an optional vocabulary) and shows the upload's progress, then the server's verdict; and a button
 * that removes an uploaded model. Shown only when the server takes uploads (data-uploads on <body>).
 * The file types offered are the server's: the template writes them into the file input's `accept`.
 */

import { ApiError, deleteModel, uploadModel } from "./api.js";

export class Uploader {
  /**
   * els: {open (button), dialog, form, file, vocab, name, status, progress, submit, cancel, remove (button)}
   * hooks: onAdded(card) after an upload, onRemoved(id) after a removal.
   */
  constructor(els, state, hooks = {}) {
    this.els = els;
    this.state = state;
    this.hooks = hooks;
    els.open.addEventListener("click", () => this._open());
    els.cancel.addEventListener("click", () => els.dialog.close());
    els.form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this._upload();
    });
    els.remove.addEventListener("click", () => this._remove());
    state.subscribe((changed) => changed.has("model") && this._showRemove());
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
    const { file, vocab, name, status, progress, submit, dialog } = this.els;
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
    try {
      const card = await uploadModel(file.files[0], vocab.files[0] || null, name.value.trim(), onProgress);
      dialog.close();
      this.hooks.onAdded?.(card);
    } catch (e) {
      progress.hidden = true;
      submit.disabled = false;
      this._say(e instanceof ApiError ? e.message : `The upload failed: ${e.message}`, true);
    }
  }

  async _remove() {
    const card = this.state.card;
    if (!card || card.origin !== "uploaded") return;
    if (!confirm(`Remove the uploaded model '${card.id}' from this server?`)) return;
    try {
      await deleteModel(card.id);
      this.hooks.onRemoved?.(card.id);
    } catch (e) {
      this.hooks.onError?.(e.message);
    }
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
