/**
 * Saving what the page shows: plotly figures as PNG/SVG (Plotly.downloadImage), the diagram's <svg>
 * as SVG (serialised, styles inlined) or PNG (drawn to a canvas), and any Blob as a download.
 * Plotly is the global from /vendor/plotly.min.js.
 */

import { PAPER } from "./plotting.js";

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
 * Download a plotly figure ({data, layout}) as "png" or "svg". The figure is drawn in a hidden
 * element first, so the page's own charts (and their overlays) stay untouched.
 */
export async function downloadFigure(figure, format, filename) {
  const host = document.createElement("div");
  host.style.cssText = "position:fixed;left:-20000px;top:0;visibility:hidden";
  document.body.append(host);
  try {
    const { width, height } = figure.layout;
    await Plotly.newPlot(host, figure.data, { ...figure.layout, paper_bgcolor: PAPER }, { staticPlot: true });
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

/** A standalone copy of an on-page <svg>: computed styles inlined, size and namespace set. */
export function standaloneSvg(svg) {
  const clone = svg.cloneNode(true);
  const src = [svg, ...svg.querySelectorAll("*")];
  const dst = [clone, ...clone.querySelectorAll("*")];
  src.forEach((node, k) => {
    const cs = getComputedStyle(node);
    const style = SVG_STYLE_PROPS.map((p) => `${p}:${cs.getPropertyValue(p)}`).join(";");
    dst[k].setAttribute("style", `${dst[k].getAttribute("style") || ""};${style}`);
  });
  const box = svg.getBoundingClientRect();
  clone.setAttribute("xmlns", "http://www.w3.org/2000/svg");
  clone.setAttribute("width", String(Math.round(box.width)));
  clone.setAttribute("height", String(Math.round(box.height)));
  if (!clone.getAttribute("viewBox")) clone.setAttribute("viewBox", `0 0 ${box.width} ${box.height}`);
  return { text: new XMLSerializer().serializeToString(clone), width: box.width, height: box.height };
}

/** Download an on-page <svg> as "svg" or "png". */
export async function downloadSvg(svg, format, filename) {
  const { text, width, height } = standaloneSvg(svg);
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
