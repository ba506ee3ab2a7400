/**
 * The safetensors format (https://github.com/huggingface/safetensors, format/README and the Rust
 * reader's validation): an 8-byte little-endian header length N, N bytes of UTF-8 JSON, then the data
 * section. Every tensor's `data_offsets` [begin, end) are relative to the data section; sorted by
 * offset, the ranges must tile it exactly (no overlaps, no holes, nothing after the last one), and each
 * range holds exactly its shape × dtype-size bytes. The header is validated in full before a single
 * tensor is copied, so a hostile header costs no memory; tensors are decoded to Float32Array only on
 * request (F32 as is, F16 and BF16 converted exactly).
 */
import { NncError } from './errors.ts';

/** The safetensors library's limit on the header (100 MB): anything longer is not a safetensors file. */
export const MAX_HEADER_BYTES = 100_000_000;

/** Bytes per element of every safetensors dtype. */
const DTYPE_SIZES: Readonly<Record<string, number>> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4, F64: 8, I64: 8, U64: 8,
};

/** The float dtypes nnc loads (converted to float32). */
export const FLOAT_DTYPES: readonly string[] = ['F32', 'F16', 'BF16'];

/** One tensor of a safetensors file, validated: its bytes are data[begin, end). */
export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly begin: number;
  readonly end: number;
}

export interface SafetensorsFile {
  /** Tensors in header order. */
  readonly entries: readonly SafetensorsEntry[];
  /** The data section. */
  readonly data: Uint8Array;
  readonly metadata: Readonly<Record<string, string>> | undefined;
}

/** A tensor name as messages show it: quoted, control characters escaped, long names shortened. */
export function showName(name: string): string {
  const short = name.length > 120 ? `${name.slice(0, 100)}…(${name.length} characters)` : name;
  return /^[\x20-\x7e]*$/.test(short) && !short.includes("'") ? `'${short}'` : JSON.stringify(short);
}

const RESAVE = 're-save it with safetensors.torch.save_file(model.state_dict(), path)';
const bad = (what: string): NncError => new NncError(`not a valid safetensors file: ${what}; ${RESAVE}`);
const notSafetensors = (what: string): NncError => new NncError(`not a safetensors file: ${what} (a safetensors file starts with an 8-byte header length and a JSON header; ${RESAVE})`);
const truncated = (what: string): NncError => new NncError(`safetensors file is truncated: ${what}; download or copy it again`);

/** Reads and validates a safetensors header and layout. Throws an NncError naming the tensor and the fix. */
export function readSafetensors(bytes: Uint8Array | ArrayBuffer): SafetensorsFile {
  // a plain view (a Node Buffer's slice() would share memory instead of copying)
  const u8 = ArrayBuffer.isView(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : new Uint8Array(bytes);
  if (u8.length < 8) throw truncated(`${u8.length} bytes, but even the 8-byte header length is missing`);
  const n = new DataView(u8.buffer, u8.byteOffset, 8).getBigUint64(0, true);
  // n is a BigInt: a length of 2^64 - 1 prints as 18446744073709551615, not as a rounded double
  if (n > BigInt(u8.length - 8)) throw new NncError(`safetensors file is truncated or not safetensors: its header claims ${n} bytes but only ${u8.length - 8} follow; download or copy it again, or ${RESAVE}`);
  if (n > BigInt(MAX_HEADER_BYTES)) throw bad(`its header claims ${n} bytes, more than the ${MAX_HEADER_BYTES} safetensors allows`);
  const base = 8 + Number(n);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(u8.subarray(8, base));
  } catch {
    throw notSafetensors('its header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch {
    throw notSafetensors('its header is not valid JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw notSafetensors('its header is not a JSON object');
  const dup = duplicateKey(text);
  if (dup) throw bad(dup.owner === undefined ? `tensor ${showName(dup.key)} appears twice in the header` : `the header entry ${showName(dup.owner)} has two '${dup.key}' fields`);

  const data = u8.subarray(base);
  const entries: SafetensorsEntry[] = [];
  let metadata: Record<string, string> | undefined;
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = checkMetadata(info);
      continue;
    }
    entries.push(checkEntry(name, info, data.length));
  }
  checkLayout(entries, data.length);
  return { entries, data, metadata };
}

function checkMetadata(info: unknown): Record<string, string> | undefined {
  if (info === null) return undefined;
  if (typeof info !== 'object' || Array.isArray(info)) throw bad(`'__metadata__' must map names to strings, got ${Array.isArray(info) ? 'an array' : JSON.stringify(info)}`);
  for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
    if (typeof v !== 'string') throw bad(`'__metadata__' must map names to strings, but ${showName(k)} is ${JSON.stringify(v)?.slice(0, 60) ?? String(v)}`);
  }
  return info as Record<string, string>;
}

function checkEntry(name: string, info: unknown, dataLength: number): SafetensorsEntry {
  const t = showName(name);
  if (typeof info !== 'object' || info === null || Array.isArray(info)) throw bad(`the header entry of tensor ${t} is ${JSON.stringify(info)?.slice(0, 60)}, not an object {dtype, shape, data_offsets}`);
  const { dtype, shape, data_offsets: offs } = info as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  const size = typeof dtype === 'string' && Object.hasOwn(DTYPE_SIZES, dtype) ? DTYPE_SIZES[dtype]! : undefined;
  if (size === undefined) throw bad(`tensor ${t} has dtype ${JSON.stringify(dtype)?.slice(0, 60) ?? 'undefined'}, which is not a safetensors dtype (${Object.keys(DTYPE_SIZES).join(', ')})`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw bad(`tensor ${t} has shape ${JSON.stringify(shape)?.slice(0, 80) ?? 'undefined'}; a shape is a list of non-negative integers`);
  }
  if (!Array.isArray(offs) || offs.length !== 2) throw bad(`tensor ${t} has no data_offsets [begin, end] (got ${JSON.stringify(offs)?.slice(0, 60) ?? 'none'})`);
  const [begin, end] = offs as unknown[];
  if (!Number.isSafeInteger(begin) || !Number.isSafeInteger(end) || (begin as number) < 0 || (end as number) < (begin as number)) {
    throw bad(`tensor ${t} has invalid data_offsets ${JSON.stringify(offs).slice(0, 80)}: they must be integers 0 ≤ begin ≤ end`);
  }
  const b = begin as number;
  const e = end as number;
  if (e > dataLength) throw truncated(`tensor ${t} needs bytes ${b}..${e} of the data section, which has ${dataLength}`);
  // exact in BigInt: a hostile shape ([2^53, 2^53]) must not round to the right byte count
  const bytes = (shape as number[]).reduce((a, d) => a * BigInt(d), BigInt(size));
  if (bytes !== BigInt(e - b)) throw bad(`tensor ${t} has ${e - b} bytes, but ${dtype} ${JSON.stringify(shape)} needs ${bytes}`);
  return { name, dtype: dtype as string, shape: shape as number[], begin: b, end: e };
}

/** Sorted by offset, the tensors must tile the data section: overlaps first (they name two tensors), then holes. */
function checkLayout(entries: readonly SafetensorsEntry[], dataLength: number): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  const range = (x: SafetensorsEntry) => `${showName(x.name)} (bytes ${x.begin}..${x.end})`;
  let owner: SafetensorsEntry | undefined; // the tensor reaching furthest so far
  for (const x of sorted) {
    if (owner && x.begin < owner.end) {
      throw bad(`tensors ${range(owner)} and ${range(x)} overlap; each tensor must have bytes of its own`);
    }
    if (!owner || x.end >= owner.end) owner = x;
  }
  let at = 0;
  let prev: SafetensorsEntry | undefined;
  for (const x of sorted) {
    if (x.begin > at) throw bad(`bytes ${at}..${x.begin} of the data section belong to no tensor (${prev ? `between ${showName(prev.name)} and ${showName(x.name)}` : `before ${showName(x.name)}`})`);
    at = x.end;
    prev = x;
  }
  if (at < dataLength) throw bad(`bytes ${at}..${dataLength} of the data section belong to no tensor (${prev ? `after ${showName(prev.name)}` : 'the header lists none'})`);
}

/**
 * The first key that appears twice in one object of (valid) JSON text — JSON.parse keeps the last
 * silently — and the key of the object holding it (undefined at the top level).
 */
function duplicateKey(text: string): { key: string; owner: string | undefined } | undefined {
  const seen: (Set<string> | null)[] = []; // one per open object; null for arrays
  const keyAt: (string | undefined)[] = []; // the last key read at each depth
  let str = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      const start = i;
      for (i++; text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
      str = text.slice(start, i + 1);
    } else if (c === 0x3a) {
      const key = JSON.parse(str) as string;
      const set = seen[seen.length - 1]!;
      if (set.has(key)) return { key, owner: seen.length > 1 ? keyAt[seen.length - 2] : undefined };
      set.add(key);
      keyAt[seen.length - 1] = key;
    } else if (c === 0x7b) seen.push(new Set());
    else if (c === 0x5b) seen.push(null);
    else if (c === 0x7d || c === 0x5d) seen.pop();
  }
  return undefined;
}

/** A tensor's values as float32: F32 copied, F16 and BF16 converted exactly. Other dtypes: undefined. */
export function decodeTensor(file: SafetensorsFile, x: SafetensorsEntry): Float32Array | undefined {
  if (!FLOAT_DTYPES.includes(x.dtype)) return undefined;
  // a copy: offsets need not be aligned, and the weights must not share the caller's buffer
  const raw = file.data.slice(x.begin, x.end);
  if (x.dtype === 'F32') return new Float32Array(raw.buffer);
  const half = new Uint16Array(raw.buffer);
  const out = new Float32Array(half.length);
  const bits = new Uint32Array(out.buffer);
  if (x.dtype === 'BF16') for (let i = 0; i < half.length; i++) bits[i] = half[i]! << 16;
  else for (let i = 0; i < half.length; i++) bits[i] = f16Bits(half[i]!);
  return out;
}

/** The float32 bit pattern of an IEEE half: exact for every value (subnormals, infinities, NaN payloads). */
function f16Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  let man = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (man << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (man << 13)) >>> 0;
  if (man === 0) return sign >>> 0;
  // subnormal: m · 2^-24, normalised into float32's range
  let e = 113;
  while (!(man & 0x400)) {
    man <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((man & 0x3ff) << 13)) >>> 0;
}

/** safetensors bytes: the tensors in the order given, contiguous, the header padded to 8 bytes. */
export function encodeSafetensors(tensors: ReadonlyMap<string, { readonly data: Float32Array; readonly shape: readonly number[] }>, metadata: Readonly<Record<string, string>> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, t] of tensors) {
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.length * 4] };
    offset += t.data.length * 4;
  }
  header['__metadata__'] = metadata;
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (new TextEncoder().encode(json).length % 8)) % 8);
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const t of tensors.values()) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}
