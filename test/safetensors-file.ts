/** Safetensors files for tests, built and read independently of the runtime's parser. */

export interface RawTensor {
  name: string;
  dtype: string;
  shape: number[];
  bytes: Uint8Array;
}

/** An independent safetensors reader (for building variants of the fixture files). */
export function readSafetensors(u8: Uint8Array): { tensors: RawTensor[]; headerLen: number } {
  const n = Number(new DataView(u8.buffer, u8.byteOffset, u8.byteLength).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(u8.subarray(8, 8 + n))) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const tensors = Object.entries(header)
    .filter(([k]) => k !== '__metadata__')
    .map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, bytes: Uint8Array.from(u8.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1])) }));
  return { tensors, headerLen: n };
}

/** Header JSON text (or bytes) + data section → safetensors bytes. */
export function rawSafetensors(headerJson: string | Uint8Array, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const h = typeof headerJson === 'string' ? new TextEncoder().encode(headerJson) : headerJson;
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

/** The header object of `tensors` laid out contiguously, `offsets` overriding tensors' data_offsets. */
export function headerOf(tensors: RawTensor[], offsets: Record<string, unknown> = {}): Record<string, unknown> {
  // no prototype: a tensor named '__proto__' is a key like any other
  const header = Object.assign(Object.create(null) as Record<string, unknown>, { __metadata__: { format: 'pt' } });
  let off = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: Object.hasOwn(offsets, t.name) ? offsets[t.name] : [off, off + t.bytes.length] };
    off += t.bytes.length;
  }
  return header;
}

/** The tensors' bytes, one after another. */
export function dataOf(tensors: RawTensor[]): Uint8Array {
  const data = new Uint8Array(tensors.reduce((s, t) => s + t.bytes.length, 0));
  let off = 0;
  for (const t of tensors) {
    data.set(t.bytes, off);
    off += t.bytes.length;
  }
  return data;
}

/** Tensors → safetensors bytes (offsets computed, `offsets` overrides one tensor's data_offsets). */
export function buildSafetensors(tensors: RawTensor[], offsets: Record<string, unknown> = {}): Uint8Array {
  return rawSafetensors(JSON.stringify(headerOf(tensors, offsets)), dataOf(tensors));
}

export const f32bytes = (n: number, fill = 0.25) => new Uint8Array(new Float32Array(n).fill(fill).buffer);

/** Deterministic junk (mulberry32). */
export function junk(n: number, seed: number): Uint8Array {
  let a = seed >>> 0;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff;
  }
  return out;
}
