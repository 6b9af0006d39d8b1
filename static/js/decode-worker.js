/**
 * Reads a large live reply off the main thread: {id, buffer} (a binary frame) in, {id, msg, reply} out, the
 * decoded arrays moved back (not copied). api.js sends it the frames of a long paste.
 */

import { decodeReply, parseFrame } from "./frames.js";

self.onmessage = ({ data }) => {
  const { id, buffer } = data;
  try {
    const { msg, payload } = parseFrame(buffer);
    const reply = msg.layers !== undefined ? decodeReply(msg, payload) : null;
    const moved = [];
    if (reply) {
      for (const layer of reply.layers) for (const g of Object.values(layer)) moved.push(g.data.buffer);
      for (const part of [reply.probs?.p, reply.values, reply.targets]) if (part) moved.push(part.data.buffer);
    }
    self.postMessage(reply ? { id, reply } : { id, msg }, moved); // a reply carries its message's fields
  } catch (e) {
    self.postMessage({ id, error: `Cannot read the reply: ${e.message}` });
  }
};
