/**
 * The page's messages (role="alert"): server errors, unknown characters, a text over the limit, a lost
 * socket. Each message has a key; setting a key again replaces its message, null removes it.
 */

import { el } from "./format.js";

export class Banner {
  constructor(root) {
    this.root = root;
    this.messages = new Map(); // key -> {text, level}
  }

  /** Show `text` under `key` ("error" | "warning" | "info"); null or "" removes it. */
  set(key, text, level = "error") {
    const old = this.messages.get(key);
    if (!text) {
      if (!old) return;
      this.messages.delete(key);
    } else {
      if (old && old.text === text && old.level === level) return;
      this.messages.set(key, { text, level });
    }
    this._render();
  }

  /** Whether a key is shown. */
  has(key) {
    return this.messages.has(key);
  }

  _render() {
    const items = [...this.messages].map(([key, { text, level }]) =>
      el(
        "div",
        { class: `msg msg-${level}`, "data-key": key },
        el("span", { class: "msg-text", text }),
        el("button", { type: "button", class: "msg-close", "aria-label": "Dismiss this message", text: "×", onclick: () => this.set(key, null) }),
      ),
    );
    this.root.replaceChildren(...items);
    this.root.hidden = items.length === 0;
  }
}
