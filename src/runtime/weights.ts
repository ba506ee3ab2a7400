/** Weight loading: safetensors parsing and the checks of every tensor against the manifest. */
import type { WeightInfo } from './types.ts';
import { NncError, typeName } from './errors.ts';

/** Parses safetensors bytes into name → Float32Array, checking every tensor against the manifest. */
export function parseSafetensors(bytes: Uint8Array | ArrayBuffer): Map<string, { dtype: string; shape: number[]; data?: Float32Array | undefined }> {
  const u8 = ArrayBuffer.isView(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : new Uint8Array(bytes);
  if (u8.length < 8) throw new NncError(`safetensors file is truncated: ${u8.length} bytes, but even the 8-byte header length is missing`);
  const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  if (n > u8.length - 8) throw new NncError(`safetensors file is truncated or not safetensors: its header claims ${n} bytes but only ${u8.length - 8} follow`);
  let header: Record<string, { dtype?: string; shape?: number[]; data_offsets?: [number, number] }>;
  try {
    header = JSON.parse(new TextDecoder().decode(u8.subarray(8, 8 + n)));
  } catch {
    throw new NncError('not a safetensors file: its header is not valid JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new NncError('not a safetensors file: its header is not a JSON object');
  const base = 8 + n;
  const out = new Map<string, { dtype: string; shape: number[]; data?: Float32Array | undefined }>();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const dtype = String(info?.dtype);
    const shape = Array.isArray(info?.shape) ? info.shape.map(Number) : [];
    const offs = info?.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2) throw new NncError(`safetensors tensor '${name}' has no data_offsets`);
    const [b = NaN, e = NaN] = offs.map(Number);
    if (!Number.isSafeInteger(b) || !Number.isSafeInteger(e) || b < 0 || e < b) throw new NncError(`safetensors tensor '${name}' has invalid data_offsets ${JSON.stringify(offs)}`);
    if (base + e > u8.length) {
      throw new NncError(`safetensors file is truncated: tensor '${name}' needs bytes ${b}..${e} of the data section, which has ${u8.length - base}`);
    }
    let data: Float32Array | undefined;
    if (dtype === 'F32') {
      const count = shape.reduce((a, c) => a * c, 1);
      if (e - b !== count * 4) throw new NncError(`safetensors tensor '${name}' has ${e - b} bytes, but F32 ${JSON.stringify(shape)} needs ${count * 4}`);
      // copy (Node's Buffer.slice would share the whole pool, and offsets need not be 4-aligned)
      const bytesCopy = new Uint8Array(e - b);
      bytesCopy.set(u8.subarray(base + b, base + e));
      data = new Float32Array(bytesCopy.buffer);
    }
    out.set(name, { dtype, shape, data });
  }
  return out;
}

/** Checks a weight map against the manifest: missing, extra, mis-shaped and non-F32 tensors are errors. */
export function checkWeights(manifest: readonly WeightInfo[], given: Map<string, { dtype: string; shape: number[]; data?: Float32Array | undefined }>, fromMap = false): Map<string, Float32Array> {
  const problems: string[] = [];
  const out = new Map<string, Float32Array>();
  for (const w of manifest) {
    const g = given.get(w.name);
    if (!g) {
      problems.push(`missing weight '${w.name}' (${w.layer}, expected shape [${w.shape.join(', ')}])`);
      continue;
    }
    if (g.dtype !== 'F32' || !g.data) {
      problems.push(fromMap
        ? `weight '${w.name}' is ${g.dtype === 'null' ? 'null' : `${/^[AEIOU]/i.test(g.dtype) ? 'an' : 'a'} ${g.dtype}`}, expected a Float32Array of ${w.shape.reduce((a, c) => a * c, 1)} values`
        : `weight '${w.name}' has dtype ${g.dtype}, expected F32 (save it with tensor.float())`);
      continue;
    }
    const count = w.shape.reduce((a, c) => a * c, 1);
    if (g.shape.length !== w.shape.length || g.shape.some((d, i) => d !== w.shape[i]) || g.data.length !== count) {
      problems.push(`weight '${w.name}' has shape [${g.shape.join(', ')}], expected [${w.shape.join(', ')}]`);
      continue;
    }
    out.set(w.name, g.data);
  }
  const names = new Set(manifest.map((w) => w.name));
  for (const name of given.keys()) if (!names.has(name)) problems.push(`unexpected weight '${name}': this model has no parameter of that name`);
  if (problems.length) throw new NncError(`cannot load weights:\n  ${problems.join('\n  ')}`);
  return out;
}

export function weightMap(src: Uint8Array | ArrayBuffer | Record<string, Float32Array>, manifest: readonly WeightInfo[]): Map<string, Float32Array> {
  const kind = typeName(src);
  if (kind === 'Uint8Array' || kind === 'ArrayBuffer') return checkWeights(manifest, parseSafetensors(src as Uint8Array | ArrayBuffer));
  if (typeof src !== 'object' || src === null || Array.isArray(src) || ArrayBuffer.isView(src) || src instanceof Map || kind === 'SharedArrayBuffer') {
    throw new NncError(`loadWeights expects safetensors bytes (Uint8Array | ArrayBuffer) or a { name: Float32Array } map, got ${kind}`);
  }
  const given = new Map<string, { dtype: string; shape: number[]; data?: Float32Array | undefined }>();
  const shapes = new Map(manifest.map((w) => [w.name, w.shape]));
  for (const [name, v] of Object.entries(src)) {
    if (v === undefined) continue; // { name: undefined } is a missing weight
    if (typeName(v) !== 'Float32Array') {
      given.set(name, { dtype: typeName(v), shape: [] });
      continue;
    }
    const want = shapes.get(name);
    const count = want ? want.reduce((a, c) => a * c, 1) : v.length;
    given.set(name, { dtype: 'F32', shape: v.length === count && want ? [...want] : [v.length], data: v });
  }
  return checkWeights(manifest, given, true);
}
