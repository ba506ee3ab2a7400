// The demo's attention pictures (examples/heatmap.ts): the hand-written PNG encoder produces a
// valid file (checked with an independent bitwise CRC and node:zlib), and the terminal map fits.
import { inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { HOT, heatmapLayout, heatmapPng, rampColor, renderHeatmap } from '../examples/heatmap.ts';

/** Bitwise CRC-32 (no table), independent of the encoder's. */
function bitwiseCrc(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return (c ^ 0xffffffff) >>> 0;
}

interface Chunk {
  type: string;
  body: Uint8Array;
  crc: number;
  crcInput: Uint8Array;
}

function chunks(png: Uint8Array): Chunk[] {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const out: Chunk[] = [];
  let o = 8;
  while (o < png.length) {
    const len = view.getUint32(o);
    const type = String.fromCharCode(...png.subarray(o + 4, o + 8));
    out.push({ type, body: png.subarray(o + 8, o + 8 + len), crc: view.getUint32(o + 8 + len), crcInput: png.subarray(o + 4, o + 8 + len) });
    o += 12 + len;
  }
  expect(o).toBe(png.length);
  return out;
}

describe('heatmap PNG', () => {
  const rows = ['1', '9', '8', '7', 'eos'];
  const cols = [...'3 march 1987'];
  const steps = rows.length;
  const S = cols.length;
  const weights = new Float32Array(steps * S).fill(0);
  const hotI = 2;
  const hotJ = 10;
  weights[hotI * S + hotJ] = 1;
  weights[0 * S + 8] = 0.5;
  weights[0 * S + 9] = 0.5;
  const png = heatmapPng(rows, cols, weights, [steps, S], { title: '"3 march 1987" → 1987-03-03' });
  const layout = heatmapLayout(rows, cols, { title: '"3 march 1987" → 1987-03-03' });

  it('starts with the PNG signature and has IHDR, IDAT, IEND with valid CRCs', () => {
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const cs = chunks(png);
    expect(cs[0].type).toBe('IHDR');
    expect(cs[cs.length - 1].type).toBe('IEND');
    expect(cs.some((c) => c.type === 'IDAT')).toBe(true);
    for (const c of cs) expect(c.crc, `CRC of ${c.type}`).toBe(bitwiseCrc(c.crcInput));
  });

  it('IHDR says width × height, 8-bit RGB, and IDAT inflates to filtered rows', () => {
    const cs = chunks(png);
    const ihdr = new DataView(cs[0].body.buffer, cs[0].body.byteOffset, 13);
    const width = ihdr.getUint32(0);
    const height = ihdr.getUint32(4);
    expect([width, height]).toEqual([layout.width, layout.height]);
    expect(width).toBeGreaterThanOrEqual(layout.gridX + S * layout.cell);
    expect(height).toBeGreaterThanOrEqual(layout.gridY + steps * layout.cell);
    expect([...cs[0].body.subarray(8)]).toEqual([8, 2, 0, 0, 0]);

    const idat = Buffer.concat(cs.filter((c) => c.type === 'IDAT').map((c) => c.body));
    const raw = inflateSync(idat);
    const stride = 1 + width * 3;
    expect(raw.length).toBe(height * stride);
    for (let y = 0; y < height; y++) expect(raw[y * stride], `filter byte of row ${y}`).toBe(0);

    const pixel = (x: number, y: number) => [...raw.subarray(y * stride + 1 + x * 3, y * stride + 1 + x * 3 + 3)];
    const centre = (i: number, j: number) =>
      pixel(layout.gridX + j * layout.cell + (layout.cell >> 1), layout.gridY + i * layout.cell + (layout.cell >> 1));
    expect(centre(hotI, hotJ)).toEqual(HOT);
    expect(centre(0, 8)).toEqual(rampColor(0.5));
    expect(centre(4, 0)).toEqual(rampColor(0));
    expect(HOT).not.toEqual(rampColor(0));
  });

  it('rejects weights that do not match the shape', () => {
    expect(() => heatmapPng(rows, cols, new Float32Array(3), [steps, S])).toThrow(/weights has 3 values/);
    expect(() => heatmapPng(rows.slice(1), cols, weights, [steps, S])).toThrow(/row labels/);
  });
});

describe('heatmap in the terminal', () => {
  it('fits a 30-character source in 80 columns, one line per output step', () => {
    const src = [...'wednesday, 23rd september 1987'];
    const out = [...'1987-09-23', 'eos'];
    const w = new Float32Array(out.length * src.length).map((_, k) => (k % src.length) / src.length);
    for (const color of [true, false]) {
      const lines = renderHeatmap(out, src, w, [out.length, src.length], { color }).split('\n');
      expect(lines.length).toBe(1 + out.length + 1); // header, rows, legend
      // eslint-disable-next-line no-control-regex
      for (const l of lines) expect([...l.replace(/\x1b\[[0-9;]*m/g, '')].length).toBeLessThanOrEqual(80);
      expect(lines[0]).toContain('w e d n e s d a y , · 2 3 r d');
    }
  });
});
