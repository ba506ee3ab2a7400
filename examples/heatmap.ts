/**
 * Attention heat maps for the demo, with nothing beyond Node built-ins:
 *
 *  - renderHeatmap: a terminal picture (ANSI 256-colour background blocks, or unicode shading
 *    with `color: false`), source characters along the top, output characters down the side.
 *    Two columns per source character, so a 30-character source fits in 80 columns.
 *  - heatmapPng / writeHeatmapPng: the same picture as a real PNG (hand-written encoder:
 *    signature, IHDR, IDAT deflated by node:zlib, IEND, CRC-32 from our own table), 16-px cells
 *    on the "inferno" colour ramp, the characters drawn along the axes with a built-in 5×7 font.
 *
 * `weights` is row-major [steps, S]: row i is the attention of output step i over the source.
 */
import { writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';

export type RGB = [number, number, number];

// ---------------------------------------------------------------------------------------------
// colour ramp (matplotlib's "inferno", 9 stops, piecewise linear): 0 = near black, 1 = pale yellow
// ---------------------------------------------------------------------------------------------

const RAMP: RGB[] = [
  [0, 0, 4], [31, 12, 72], [85, 15, 109], [136, 34, 106], [186, 54, 85],
  [227, 89, 51], [249, 140, 10], [249, 201, 50], [252, 255, 164],
];

/** The ramp's colour for a weight in [0, 1] (clamped; NaN counts as 0). */
export function rampColor(w: number): RGB {
  const x = Number.isFinite(w) ? Math.min(1, Math.max(0, w)) : 0;
  const f = x * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(f));
  const t = f - i;
  const a = RAMP[i];
  const b = RAMP[i + 1];
  return [0, 1, 2].map((k) => Math.round(a[k] + (b[k] - a[k]) * t)) as RGB;
}

/** The colour of a weight of 1. */
export const HOT: RGB = rampColor(1);

function checkShape(rows: string[], cols: string[], weights: ArrayLike<number>, shape: [number, number]): void {
  const [steps, S] = shape;
  if (!Number.isInteger(steps) || !Number.isInteger(S) || steps < 0 || S < 0) {
    throw new Error(`heatmap: shape must be [steps, S] of non-negative integers, got [${shape.join(', ')}]`);
  }
  if (weights.length !== steps * S) {
    throw new Error(`heatmap: weights has ${weights.length} values, expected steps × S = ${steps} × ${S} = ${steps * S}`);
  }
  if (rows.length !== steps) throw new Error(`heatmap: ${rows.length} row labels for ${steps} steps`);
  if (cols.length !== S) throw new Error(`heatmap: ${cols.length} column labels for ${S} source positions`);
}

// ---------------------------------------------------------------------------------------------
// terminal
// ---------------------------------------------------------------------------------------------

const CUBE = [0, 95, 135, 175, 215, 255];

/** Nearest xterm-256 colour (6×6×6 cube or grey ramp) to an RGB colour. */
export function xterm256(c: RGB): number {
  const near = (v: number) => {
    let best = 0;
    for (let i = 1; i < 6; i++) if (Math.abs(CUBE[i] - v) < Math.abs(CUBE[best] - v)) best = i;
    return best;
  };
  const [r, g, b] = c.map(near);
  const cube = 16 + 36 * r + 6 * g + b;
  const dCube = (CUBE[r] - c[0]) ** 2 + (CUBE[g] - c[1]) ** 2 + (CUBE[b] - c[2]) ** 2;
  const mean = (c[0] + c[1] + c[2]) / 3;
  const gi = Math.max(0, Math.min(23, Math.round((mean - 8) / 10)));
  const gv = 8 + 10 * gi;
  const dGrey = (gv - c[0]) ** 2 + (gv - c[1]) ** 2 + (gv - c[2]) ** 2;
  return dGrey < dCube ? 232 + gi : cube;
}

const SHADES = [' ', '░', '▒', '▓', '█'];

export interface TerminalOptions {
  /** ANSI 256-colour backgrounds (default true); false draws unicode shading instead. */
  color?: boolean;
}

/** The heat map as text lines (joined by '\n', no trailing newline). */
export function renderHeatmap(
  rows: string[],
  cols: string[],
  weights: ArrayLike<number>,
  shape: [number, number],
  opts: TerminalOptions = {},
): string {
  checkShape(rows, cols, weights, shape);
  const color = opts.color ?? true;
  const [steps, S] = shape;
  const labelW = Math.max(1, ...rows.map((r) => [...r].length));
  const pad = ' '.repeat(labelW + 1);
  const show = (ch: string) => (ch === ' ' ? '·' : [...ch][0] ?? '?');
  const lines: string[] = [];
  lines.push(pad + cols.map((c) => show(c) + ' ').join('').trimEnd());
  for (let i = 0; i < steps; i++) {
    let line = rows[i].padStart(labelW) + ' ';
    for (let j = 0; j < S; j++) {
      const w = weights[i * S + j];
      if (color) line += `\x1b[48;5;${xterm256(rampColor(w))}m  `;
      else {
        const ch = SHADES[Math.min(SHADES.length - 1, Math.max(0, Math.round((Number.isFinite(w) ? w : 0) * (SHADES.length - 1))))];
        line += ch + ch;
      }
    }
    lines.push(color ? line + '\x1b[0m' : line.trimEnd());
  }
  // legend: 0 … 1 on the same ramp
  let legend = pad + '0 ';
  for (let k = 0; k <= 10; k++) {
    const w = k / 10;
    if (color) legend += `\x1b[48;5;${xterm256(rampColor(w))}m `;
    else legend += SHADES[Math.round(w * (SHADES.length - 1))];
  }
  legend += (color ? '\x1b[0m' : '') + ' 1  attention weight';
  lines.push(legend);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// 5×7 bitmap font
// ---------------------------------------------------------------------------------------------

// prettier-ignore
const FONT_SRC: Record<string, string[]> = {
  '0': [' ### ', '#   #', '#  ##', '# # #', '##  #', '#   #', ' ### '],
  '1': ['  #  ', ' ##  ', '  #  ', '  #  ', '  #  ', '  #  ', ' ### '],
  '2': [' ### ', '#   #', '    #', '   # ', '  #  ', ' #   ', '#####'],
  '3': ['#####', '   # ', '  #  ', '   # ', '    #', '#   #', ' ### '],
  '4': ['   # ', '  ## ', ' # # ', '#  # ', '#####', '   # ', '   # '],
  '5': ['#####', '#    ', '#### ', '    #', '    #', '#   #', ' ### '],
  '6': ['  ## ', ' #   ', '#    ', '#### ', '#   #', '#   #', ' ### '],
  '7': ['#####', '    #', '   # ', '  #  ', ' #   ', ' #   ', ' #   '],
  '8': [' ### ', '#   #', '#   #', ' ### ', '#   #', '#   #', ' ### '],
  '9': [' ### ', '#   #', '#   #', ' ####', '    #', '   # ', ' ##  '],
  a: ['     ', '     ', ' ### ', '    #', ' ####', '#   #', ' ####'],
  b: ['#    ', '#    ', '# ## ', '##  #', '#   #', '#   #', '#### '],
  c: ['     ', '     ', ' ### ', '#    ', '#    ', '#   #', ' ### '],
  d: ['    #', '    #', ' ## #', '#  ##', '#   #', '#   #', ' ####'],
  e: ['     ', '     ', ' ### ', '#   #', '#####', '#    ', ' ### '],
  f: ['  ## ', ' #  #', ' #   ', '###  ', ' #   ', ' #   ', ' #   '],
  g: ['     ', ' ####', '#   #', '#   #', ' ####', '    #', ' ### '],
  h: ['#    ', '#    ', '# ## ', '##  #', '#   #', '#   #', '#   #'],
  i: ['  #  ', '     ', ' ##  ', '  #  ', '  #  ', '  #  ', ' ### '],
  j: ['   # ', '     ', '  ## ', '   # ', '   # ', '#  # ', ' ##  '],
  k: ['#    ', '#    ', '#  # ', '# #  ', '##   ', '# #  ', '#  # '],
  l: [' ##  ', '  #  ', '  #  ', '  #  ', '  #  ', '  #  ', ' ### '],
  m: ['     ', '     ', '## # ', '# # #', '# # #', '#   #', '#   #'],
  n: ['     ', '     ', '# ## ', '##  #', '#   #', '#   #', '#   #'],
  o: ['     ', '     ', ' ### ', '#   #', '#   #', '#   #', ' ### '],
  p: ['     ', '     ', '#### ', '#   #', '#### ', '#    ', '#    '],
  q: ['     ', '     ', ' ## #', '#  ##', ' ####', '    #', '    #'],
  r: ['     ', '     ', '# ## ', '##  #', '#    ', '#    ', '#    '],
  s: ['     ', '     ', ' ### ', '#    ', ' ### ', '    #', '#### '],
  t: [' #   ', ' #   ', '###  ', ' #   ', ' #   ', ' #  #', '  ## '],
  u: ['     ', '     ', '#   #', '#   #', '#   #', '#  ##', ' ## #'],
  v: ['     ', '     ', '#   #', '#   #', '#   #', ' # # ', '  #  '],
  w: ['     ', '     ', '#   #', '#   #', '# # #', '# # #', ' # # '],
  x: ['     ', '     ', '#   #', ' # # ', '  #  ', ' # # ', '#   #'],
  y: ['     ', '     ', '#   #', '#   #', ' ####', '    #', ' ### '],
  z: ['     ', '     ', '#####', '   # ', '  #  ', ' #   ', '#####'],
  ' ': ['     ', '     ', '     ', '     ', '     ', '     ', '     '],
  '␣': ['     ', '     ', '     ', '     ', '     ', '#   #', '#####'],
  '-': ['     ', '     ', '     ', '#####', '     ', '     ', '     '],
  '/': ['     ', '    #', '   # ', '  #  ', ' #   ', '#    ', '     '],
  ',': ['     ', '     ', '     ', '     ', ' ##  ', '  #  ', ' #   '],
  '.': ['     ', '     ', '     ', '     ', '     ', ' ##  ', ' ##  '],
  ':': ['     ', ' ##  ', ' ##  ', '     ', ' ##  ', ' ##  ', '     '],
  ';': ['     ', ' ##  ', ' ##  ', '     ', ' ##  ', '  #  ', ' #   '],
  "'": ['  #  ', '  #  ', ' #   ', '     ', '     ', '     ', '     '],
  '"': [' # # ', ' # # ', '     ', '     ', '     ', '     ', '     '],
  '(': ['   # ', '  #  ', ' #   ', ' #   ', ' #   ', '  #  ', '   # '],
  ')': [' #   ', '  #  ', '   # ', '   # ', '   # ', '  #  ', ' #   '],
  '<': ['   # ', '  #  ', ' #   ', '#    ', ' #   ', '  #  ', '   # '],
  '>': [' #   ', '  #  ', '   # ', '    #', '   # ', '  #  ', ' #   '],
  '=': ['     ', '     ', '#####', '     ', '#####', '     ', '     '],
  '+': ['     ', '  #  ', '  #  ', '#####', '  #  ', '  #  ', '     '],
  '_': ['     ', '     ', '     ', '     ', '     ', '     ', '#####'],
  '?': [' ### ', '#   #', '    #', '   # ', '  #  ', '     ', '  #  '],
  '!': ['  #  ', '  #  ', '  #  ', '  #  ', '  #  ', '     ', '  #  '],
  '#': [' # # ', ' # # ', '#####', ' # # ', '#####', ' # # ', ' # # '],
  '%': ['##   ', '##  #', '   # ', '  #  ', ' #   ', '#  ##', '   ##'],
  '→': ['     ', '  #  ', '   # ', '#####', '   # ', '  #  ', '     '],
  '↓': ['  #  ', '  #  ', '  #  ', '  #  ', '# # #', ' ### ', '  #  '],
  '·': ['     ', '     ', '     ', '  #  ', '     ', '     ', '     '],
  '✓': ['     ', '    #', '    #', '   # ', '#  # ', ' # # ', '  #  '],
  '✗': ['     ', '#   #', ' # # ', '  #  ', ' # # ', '#   #', '     '],
};

const GLYPH_W = 5;
const GLYPH_H = 7;

/** Characters the PNG font can draw (others are drawn as '?'; capitals as small letters). */
export const FONT_CHARS: string = Object.keys(FONT_SRC).join('');

function glyph(ch: string): string[] {
  return FONT_SRC[ch] ?? FONT_SRC[ch.toLowerCase()] ?? FONT_SRC['?'];
}

// ---------------------------------------------------------------------------------------------
// raster
// ---------------------------------------------------------------------------------------------

class Raster {
  readonly data: Uint8Array;
  constructor(readonly width: number, readonly height: number, bg: RGB) {
    this.data = new Uint8Array(width * height * 3);
    this.fill(0, 0, width, height, bg);
  }
  fill(x: number, y: number, w: number, h: number, c: RGB): void {
    const x0 = Math.max(0, x), y0 = Math.max(0, y);
    const x1 = Math.min(this.width, x + w), y1 = Math.min(this.height, y + h);
    for (let yy = y0; yy < y1; yy++) {
      for (let xx = x0; xx < x1; xx++) {
        const o = (yy * this.width + xx) * 3;
        this.data[o] = c[0];
        this.data[o + 1] = c[1];
        this.data[o + 2] = c[2];
      }
    }
  }
  /** Draws one character with its top-left corner at (x, y), each font pixel scale × scale. */
  char(ch: string, x: number, y: number, scale: number, c: RGB): void {
    const g = glyph(ch);
    for (let r = 0; r < GLYPH_H; r++) {
      for (let k = 0; k < GLYPH_W; k++) if (g[r][k] === '#') this.fill(x + k * scale, y + r * scale, scale, scale, c);
    }
  }
  /** Draws a string; the advance is (5 + 1) × scale per character. */
  text(s: string, x: number, y: number, scale: number, c: RGB): void {
    let cx = x;
    for (const ch of s) {
      this.char(ch, cx, y, scale, c);
      cx += textWidth(ch, scale);
    }
  }
}

function textWidth(s: string, scale: number): number {
  return [...s].length * (GLYPH_W + 1) * scale;
}

// ---------------------------------------------------------------------------------------------
// PNG
// ---------------------------------------------------------------------------------------------

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO 3309 / PNG), table-driven. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

const PNG_SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

function chunk(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, body.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(body, 8);
  view.setUint32(8 + body.length, crc32(out.subarray(4, 8 + body.length)));
  return out;
}

/** An 8-bit RGB PNG (colour type 2, no interlace, filter 0 on every row) of `rgb` [height, width, 3]. */
export function encodePng(width: number, height: number, rgb: Uint8Array): Uint8Array {
  if (rgb.length !== width * height * 3) {
    throw new Error(`encodePng: ${rgb.length} bytes for ${width}×${height} RGB, expected ${width * height * 3}`);
  }
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: truecolour
  ihdr[10] = 0; // compression: deflate
  ihdr[11] = 0; // filter method 0
  ihdr[12] = 0; // no interlace
  const stride = width * 3;
  const raw = new Uint8Array(height * (1 + stride));
  for (let y = 0; y < height; y++) {
    raw[y * (1 + stride)] = 0; // filter type None
    raw.set(rgb.subarray(y * stride, (y + 1) * stride), y * (1 + stride) + 1);
  }
  const idat = new Uint8Array(deflateSync(raw, { level: 9 }));
  const parts = [PNG_SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// the heat-map picture
// ---------------------------------------------------------------------------------------------

export interface PngOptions {
  /** A line of text above the picture. */
  title?: string;
  /** Cell size in pixels (default 18: 14-px characters with room between them). */
  cell?: number;
}

/** Where things are in the picture: cell (i, j) covers x ∈ [gridX + j·cell, gridX + (j+1)·cell), y likewise. */
export interface HeatmapLayout {
  width: number;
  height: number;
  gridX: number;
  gridY: number;
  cell: number;
}

const BG: RGB = [255, 255, 255];
const INK: RGB = [34, 34, 34];
const FAINT: RGB = [150, 150, 150];
const MARGIN = 12;
const LABEL_SCALE = 2; // 10 × 14 px characters on the axes
const TITLE_SCALE = 2;
const LEGEND_SCALE = 2;

export function heatmapLayout(rows: string[], cols: string[], opts: PngOptions = {}): HeatmapLayout {
  const cell = opts.cell ?? 18;
  const rowLabelW = Math.max(...rows.map((r) => textWidth(r, LABEL_SCALE)), textWidth('0', LABEL_SCALE));
  const titleH = opts.title ? GLYPH_H * TITLE_SCALE + 12 : 0;
  const gridX = MARGIN + rowLabelW + 8;
  const gridY = MARGIN + titleH + GLYPH_H * LABEL_SCALE + 6;
  const legendW = 10 + 12 + 6 + textWidth('1.0', LEGEND_SCALE);
  const gridW = cols.length * cell;
  const gridH = rows.length * cell;
  const titleW = opts.title ? MARGIN + textWidth(opts.title, TITLE_SCALE) + MARGIN : 0;
  const width = Math.max(gridX + gridW + legendW + MARGIN, titleW);
  const height = gridY + Math.max(gridH, 3 * GLYPH_H * LEGEND_SCALE + 12) + MARGIN;
  return { width, height, gridX, gridY, cell };
}

/** The heat map as PNG bytes. */
export function heatmapPng(
  rows: string[],
  cols: string[],
  weights: ArrayLike<number>,
  shape: [number, number],
  opts: PngOptions = {},
): Uint8Array {
  checkShape(rows, cols, weights, shape);
  const [steps, S] = shape;
  const L = heatmapLayout(rows, cols, opts);
  const { cell, gridX, gridY } = L;
  const img = new Raster(L.width, L.height, BG);
  const glyphW = GLYPH_W * LABEL_SCALE;
  const glyphH = GLYPH_H * LABEL_SCALE;

  if (opts.title) img.text(opts.title, MARGIN, MARGIN, TITLE_SCALE, INK);

  // source characters along the top, centred over their columns (a space shows as a faint ␣)
  for (let j = 0; j < S; j++) {
    const x = gridX + j * cell + Math.floor((cell - glyphW) / 2);
    const y = gridY - 6 - glyphH;
    if (cols[j] === ' ') img.char('␣', x, y, LABEL_SCALE, FAINT);
    else img.char([...cols[j]][0] ?? '?', x, y, LABEL_SCALE, INK);
  }
  // output labels down the side, right-aligned, centred on their rows
  for (let i = 0; i < steps; i++) {
    const w = textWidth(rows[i], LABEL_SCALE) - LABEL_SCALE; // no trailing advance
    const y = gridY + i * cell + Math.floor((cell - glyphH) / 2);
    img.text(rows[i], gridX - 8 - w, y, LABEL_SCALE, INK);
  }
  // the cells, with a 1-px white gap between them
  for (let i = 0; i < steps; i++) {
    for (let j = 0; j < S; j++) {
      const x = gridX + j * cell;
      const y = gridY + i * cell;
      img.fill(x, y, cell - 1, cell - 1, rampColor(weights[i * S + j]));
    }
  }
  // colour bar: 1 at the top, 0 at the bottom
  const barX = gridX + S * cell + 10;
  const barH = Math.max(steps * cell, 3 * GLYPH_H * LEGEND_SCALE + 12) - 1;
  for (let y = 0; y < barH; y++) img.fill(barX, gridY + y, 12, 1, rampColor(1 - y / (barH - 1)));
  const lx = barX + 12 + 4;
  const th = GLYPH_H * LEGEND_SCALE;
  img.text('1.0', lx, gridY, LEGEND_SCALE, INK);
  img.text('0.5', lx, gridY + Math.floor((barH - th) / 2), LEGEND_SCALE, INK);
  img.text('0', lx, gridY + barH - th, LEGEND_SCALE, INK);

  return encodePng(L.width, L.height, img.data);
}

/** Writes the heat map to `path` as a PNG; returns its size and layout. */
export function writeHeatmapPng(
  path: string,
  rows: string[],
  cols: string[],
  weights: ArrayLike<number>,
  shape: [number, number],
  opts: PngOptions = {},
): HeatmapLayout & { bytes: number } {
  const png = heatmapPng(rows, cols, weights, shape, opts);
  writeFileSync(path, png);
  return { ...heatmapLayout(rows, cols, opts), bytes: png.length };
}
