/**
 * The page's messages (role="alert"): server errors, unknown characters, a text over the limit, a lost
 * socket. Each message has a key; setting a key again replaces its message, null removes it.
 *
 * Given the state, the banner keeps one message itself: which characters of the text shown are not in the
 * model's vocabulary (state.trace.unknown), updated whenever the trace changes.
 */

import { el, showToken } from "./format.js";

/** Unknown characters named in the vocabulary message (the rest are left out). */
const UNKNOWN_SHOWN = 5;

export class Banner {
  constructor(root, state = null) {
    this.root = root;
    this.messages = new Map(); // key -> {text, level}
    state?.subscribe((changed) => {
      if (changed.has("trace") || changed.has("model")) this._showUnknown(state);
    });
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

  _showUnknown(state) {
    const unknown = state.trace.unknownShown();
    if (!unknown.length) {
      this.set("unknown", null);
      return;
    }
    const chars = [...new Set(unknown.map((t) => showToken(state.trace.tokens[t])))].slice(0, UNKNOWN_SHOWN);
    const many = chars.length > 1;
    this.set(
      "unknown",
      `${chars.map((c) => `'${c}'`).join(", ")} ${many ? "are" : "is"} not in ${state.model}'s vocabulary (first at t = ${unknown[0]}): the model reads ${many ? "them" : "it"} as an unknown token.`,
      "warning",
    );
  }

  _render() {
    const items = [...this.messages].map(([key, { text, level }]) =>
      el(
        "div",
        { class: `msg msg-${level}` },
        el("span", { class: "msg-text", text }),
        el("button", { type: "button", class: "msg-close", "aria-label": "Dismiss this message", text: "×", onclick: () => this.set(key, null) }),
      ),
    );
    this.root.replaceChildren(...items);
    this.root.hidden = items.length === 0;
  }
}
