/**
 * Saving what the page shows: plotly figures as PNG/SVG (Plotly.downloadImage), the diagram's <svg>
 * as SVG (serialised, styles inlined) or PNG (drawn to a canvas), and any Blob as a download.
 * Plotly is the global from /vendor/plotly.min.js. Every export carries a caption (captionOf): the model, the text
 * (shortened), the step t and the unit it shows, so a figure pasted into slides still says what it is.
 */

import { showToken } from "./format.js";
import { FONT, PAPER } from "./plotting.js";

/** Characters of the text a caption quotes (then "…"). */
const CAPTION_TEXT = 40;

/** What an export shows, in one line: "model code · layer 0 · unit 118 · t = 12 (step 13 of 40, 'x') · text “def f(x):…”". */
export function captionOf(state) {
  const s = state;
  const text = [...s.text];
  const quoted = showToken(text.slice(0, CAPTION_TEXT).join("")) + (text.length > CAPTION_TEXT ? "…" : "");
  const T = s.trace.T;
  const at = T ? `t = ${s.t} (step ${s.t + 1} of ${T}, '${showToken(s.trace.tokens[s.t])}')` : "no steps";
  return `model ${s.model} · layer ${s.layer} · unit ${s.unit} · ${at} · text “${quoted}”`;
}

/** Height of a caption's line under an exported figure, and of the band's padding (px). */
const CAPTION_LINE_PX = 15;
const CAPTION_PAD_PX = 11;
/** Width of a caption character at 11 px, about (px): where its lines wrap. */
const CAPTION_CHAR_PX = 6.4;

/** A caption's lines for a figure `width` px wide: broken at its " · " separators (a long part stays whole). */
function _lines(caption, width) {
  const fit = Math.max(20, Math.floor((width - 12) / CAPTION_CHAR_PX));
  const lines = [];
  for (const part of caption.split(" · ")) {
    const last = lines.length - 1;
    if (last >= 0 && lines[last].length + 3 + part.length <= fit) lines[last] += ` · ${part}`;
    else lines.push(part);
  }
  return lines;
}

/** Save a Blob under a file name. */
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** A file-name-safe slug. */
export function slug(s) {
  return String(s).replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "") || "gatescope";
}

/** Scale of exported PNGs (2: crisp on high-density screens and in print). */
const PNG_SCALE = 2;

/**
 * Download a plotly figure ({data, layout}) as "png" or "svg", `caption` written under it. The figure is drawn in a
 * hidden element first, so the page's own charts (and their overlays) stay untouched.
 */
export async function downloadFigure(figure, format, filename, caption = "") {
  const host = document.createElement("div");
  host.style.cssText = "position:fixed;left:-20000px;top:0;visibility:hidden";
  document.body.append(host);
  try {
    const layout = { ...figure.layout, paper_bgcolor: PAPER };
    if (caption) {
      const margin = layout.margin || {};
      const lines = _lines(caption, layout.width - (margin.l ?? 80)).map((l) => l.replace(/[<>&]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;" })[c]));
      const band = lines.length * CAPTION_LINE_PX + CAPTION_PAD_PX;
      layout.height += band;
      layout.margin = { ...margin, b: (margin.b ?? 80) + band };
      const note = {
        text: lines.join("<br>"), align: "left", xref: "paper", yref: "paper", x: 0, y: 0, xanchor: "left", yanchor: "top",
        yshift: -((margin.b ?? 80) + 4), showarrow: false, font: { size: 11, color: FONT.color },
      };
      layout.annotations = [...(layout.annotations || []), note];
    }
    const { width, height } = layout;
    await Plotly.newPlot(host, figure.data, layout, { staticPlot: true });
    await Plotly.downloadImage(host, { format, width, height, scale: format === "png" ? PNG_SCALE : 1, filename });
  } finally {
    Plotly.purge(host);
    host.remove();
  }
}

/** Style properties copied onto an exported SVG's elements (the page's CSS does not travel). */
const SVG_STYLE_PROPS = [
  "fill", "fill-opacity", "stroke", "stroke-width", "stroke-opacity", "stroke-dasharray", "stroke-linecap",
  "stroke-linejoin", "opacity", "font-family", "font-size", "font-weight", "font-style", "text-anchor",
  "dominant-baseline", "visibility", "display", "color", "marker-end", "marker-start",
];

/** A standalone copy of an on-page <svg>: computed styles inlined, size and namespace set; `caption` a line under it. */
export function standaloneSvg(svg, caption = "") {
  const clone = svg.cloneNode(true);
  const src = [svg, ...svg.querySelectorAll("*")];
  const dst = [clone, ...clone.querySelectorAll("*")];
  src.forEach((node, k) => {
    const cs = getComputedStyle(node);
    const style = SVG_STYLE_PROPS.map((p) => `${p}:${cs.getPropertyValue(p)}`).join(";");
    dst[k].setAttribute("style", `${dst[k].getAttribute("style") || ""};${style}`);
  });
  // a canvas in a foreignObject (the diagram's strips) clones empty, and an SVG file or image cannot hold one: its
  // pixels as an <image> in its place
  const canvases = svg.querySelectorAll("foreignObject > canvas");
  clone.querySelectorAll("foreignObject > canvas").forEach((c, k) => {
    const fo = c.parentNode;
    const image = document.createElementNS("http://www.w3.org/2000/svg", "image");
    for (const a of ["x", "y", "width", "height"]) image.setAttribute(a, fo.getAttribute(a));
    image.setAttribute("preserveAspectRatio", "none");
    image.setAttribute("style", "image-rendering:pixelated");
    image.setAttribute("href", canvases[k].toDataURL());
    fo.replaceWith(image);
  });
  const box = svg.getBoundingClientRect();
  clone.setAttribute("xmlns", "http://www.w3.org/2000/svg");
  if (!clone.getAttribute("viewBox")) clone.setAttribute("viewBox", `0 0 ${box.width} ${box.height}`);
  let height = box.height;
  if (caption) {
    // the caption's own band under the drawing, in the viewBox's units (scaled as the drawing is)
    const [x0, y0, vw, vh] = clone.getAttribute("viewBox").split(/[\s,]+/).map(Number);
    const unit = vh / box.height; // viewBox units a screen px
    const lines = _lines(caption, box.width);
    const px = lines.length * CAPTION_LINE_PX + CAPTION_PAD_PX;
    clone.setAttribute("viewBox", `${x0} ${y0} ${vw} ${vh + px * unit}`);
    const ns = "http://www.w3.org/2000/svg";
    const band = document.createElementNS(ns, "rect");
    for (const [k, v] of Object.entries({ x: x0, y: y0 + vh, width: vw, height: px * unit, fill: "#ffffff" })) band.setAttribute(k, String(v));
    const text = document.createElementNS(ns, "text");
    text.setAttribute("class", "export-caption");
    text.setAttribute("style", `font-family:system-ui,sans-serif;font-size:${11 * unit}px;fill:#2b3137`);
    lines.forEach((line, k) => {
      const span = document.createElementNS(ns, "tspan");
      span.setAttribute("x", String(x0 + 6 * unit));
      span.setAttribute("y", String(y0 + vh + (k + 1) * CAPTION_LINE_PX * unit));
      span.textContent = line;
      text.append(span);
    });
    clone.append(band, text);
    height += px;
  }
  clone.setAttribute("width", String(Math.round(box.width)));
  clone.setAttribute("height", String(Math.round(height)));
  return { text: new XMLSerializer().serializeToString(clone), width: box.width, height };
}

/** Download an on-page <svg> as "svg" or "png", `caption` written under it. */
export async function downloadSvg(svg, format, filename, caption = "") {
  const { text, width, height } = standaloneSvg(svg, caption);
  const blob = new Blob([text], { type: "image/svg+xml" });
  if (format === "svg") return saveBlob(blob, `${filename}.svg`);
  const url = URL.createObjectURL(blob);
  try {
    const img = new Image();
    await new Promise((resolve, reject) => {
      img.onload = resolve;
      img.onerror = () => reject(new Error("The diagram could not be drawn as an image."));
      img.src = url;
    });
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(width * PNG_SCALE);
    canvas.height = Math.round(height * PNG_SCALE);
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    const png = await new Promise((resolve) => {
      canvas.toBlob(resolve, "image/png");
    });
    saveBlob(png, `${filename}.png`);
  } finally {
    URL.revokeObjectURL(url);
  }
}
