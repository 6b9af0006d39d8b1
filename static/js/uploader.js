/**
 * Your own model: a dialog that uploads a weight file (PyTorch, Keras, ONNX or gatescope's own, with
 * an optional vocabulary or Hugging Face tokenizer.json) and shows the upload's progress, then the server's verdict; and a button
 * that removes an uploaded model. Shown only when the server takes uploads (data-uploads on <body>).
 * The file types offered are the server's: the template writes them into the file input's `accept`.
 *
 * A file holding several recurrent modules (an encoder-decoder) is answered with their list: the dialog
 * then shows a select of them and the next Upload sends the chosen one as the form field `module`.
 *
 * After an upload or a removal the state takes the server's new model list; an added text model is
 * chosen at once, a removed one gives way to `defaultModel`, both through `choose` (main.js passes the picker's: the
 * text typed stays when the server says the new model reads it, POST /api/models/{id}/reads, else the page asks).
 */

import { ApiError, deleteModel, listModels, uploadModel } from "./api.js";

export class Uploader {
  /**
   * els: {open (button), dialog, form, file, vocab, name, status, progress, submit, cancel, remove (button),
   *       moduleRow, module (select)}
   * options: defaultModel (shown after a removal); onMessage(text | null, level) for the page's banner;
   * choose(id) switches model (the picker's rule for the text; by default the new model's example replaces it).
   */
  constructor(els, state, { defaultModel = null, onMessage = () => {}, choose = null } = {}) {
    this.els = els;
    this.state = state;
    this._choose = choose ?? ((id) => state.choose(id, { keep: false }));
    this._defaultModel = defaultModel;
    this._message = onMessage;
    els.open.addEventListener("click", () => this._open());
    els.cancel.addEventListener("click", () => els.dialog.close());
    els.form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this._upload();
    });
    els.remove.addEventListener("click", () => this._remove());
    els.file.addEventListener("change", () => this._offerModules(null)); // another file: its own modules
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
    this._offerModules(null);
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
      const module = this.els.moduleRow.hidden ? "" : this.els.module.value;
      card = await uploadModel(file.files[0], vocab.files[0] || null, name.value.trim(), onProgress, output, module);
    } catch (e) {
      progress.hidden = true;
      submit.disabled = false;
      if (e instanceof ApiError && e.modules?.length) {
        this._offerModules(e.modules);
        return this._say("This file holds several recurrent modules: choose one and press Upload again.", true);
      }
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
    return this._choose(card.id);
  }

  async _remove() {
    const card = this.state.card;
    if (!card || card.origin !== "uploaded") return;
    if (!confirm(`Remove the uploaded model '${card.id}' from this server?`)) return;
    // leave it first: every view drops (aborts) what it was asking about it, so nothing asks after it is gone
    const others = this.state.cards.filter((c) => c.id !== card.id);
    if (others.length) {
      const next = others.find((c) => c.id === this._defaultModel)?.id || others[0].id;
      await this._choose(next); // the text stays when the next model reads it
      if (this.state.model === card.id) this.state.choose(next, { keep: false }); // it cannot: no asking, it is going
    }
    try {
      await deleteModel(card.id);
    } catch (e) {
      this._message(`'${card.id}' was not removed: ${e.message}`);
      return;
    }
    try {
      this.state.setCards(await listModels());
    } catch (e) {
      this._message(`Removed '${card.id}', but the model list did not reload: ${e.message}`);
      return;
    }
    this._message(`Removed '${card.id}'.`, "info");
  }

  /** Show a select of the file's recurrent modules (null: hide it). */
  _offerModules(modules) {
    const { moduleRow, module } = this.els;
    module.replaceChildren(
      ...(modules || []).map((m) => {
        const opt = document.createElement("option");
        opt.value = opt.textContent = m;
        return opt;
      }),
    );
    moduleRow.hidden = !modules;
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
