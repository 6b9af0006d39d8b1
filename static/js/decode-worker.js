/**
 * Reads a large live reply off the main thread: {id, buffer} (a binary frame) in, {id, msg, reply} out, the
 * decoded arrays moved back (not copied). api.js sends it the frames of a long paste; a reply sent in parts
 * (WS /api/live?parts=1) arrives as {id, part, index, count} messages, joined here when the last one comes.
 */

import { decodeReply, packReply, parseFrame } from "./frames.js";

/** The parts of the reply being joined: {id, parts: [ArrayBuffer]} (12 bytes of header each). */
let joining = null;

/** The parts' bytes in one buffer (app/encoding.py split_parts' inverse). */
function join(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength - 12, 0));
  let at = 0;
  for (const p of parts) {
    out.set(new Uint8Array(p, 12), at);
    at += p.byteLength - 12;
  }
  return out.buffer;
}

self.onmessage = ({ data }) => {
  const { id } = data;
  let buffer = data.buffer;
  if (data.part) {
    if (data.index === 0) joining = { id, parts: [] };
    if (!joining || joining.id !== id || joining.parts.length !== data.index) {
      joining = null;
      if (data.index + 1 === data.count) self.postMessage({ id, error: "Cannot read the reply: a part of it is missing" });
      return;
    }
    joining.parts.push(data.part);
    if (data.index + 1 < data.count) return;
    buffer = join(joining.parts);
    joining = null;
  }
  try {
    const { msg, payload } = parseFrame(buffer);
    const reply = msg.layers !== undefined ? decodeReply(msg, payload, true) : null;
    const moved = reply ? packReply(reply) : []; // its tokens as indices: one buffer, not 100,000 strings
    if (reply) {
      for (const layer of reply.layers) for (const g of Object.values(layer)) moved.push(g.data.buffer);
      for (const part of [reply.probs?.p, reply.values, reply.targets]) if (part) moved.push(part.data.buffer);
    }
    self.postMessage(reply ? { id, reply } : { id, msg }, moved); // a reply carries its message's fields
  } catch (e) {
    self.postMessage({ id, error: `Cannot read the reply: ${e.message}` });
  }
};
