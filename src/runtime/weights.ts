/**
 * Weight loading: from safetensors bytes or a { name: Float32Array } map (synchronously), or from a URL,
 * a file path (Node), a fetch Response, a Blob or a ReadableStream (asynchronously, with progress) —
 * then names matched to the manifest (weight-names.ts: nnc's names, a rename option, a common prefix,
 * PyTorch's stock Transformer layout), dtypes converted (F16, BF16 → float32), and every tensor checked:
 * present, not extra, the right shape, finite. Nothing is copied out of a file before all of that holds.
 */
import type { WeightInfo } from './types.ts';
import { NncError, typeName } from './errors.ts';
import { isNode } from './host.ts';
import { decodeTensor, FLOAT_DTYPES, readSafetensors, showName, type SafetensorsFile } from './safetensors.ts';
import { describeStack, likelyRenames, resolveNames, type Resolution } from './weight-names.ts';
import { LOAD_OPTIONS, checkOptions, type LoadOptions } from './options.ts';

/** What loadWeights takes synchronously: safetensors bytes, or weights by name. */
export type WeightSource = Uint8Array | ArrayBuffer | Readonly<Record<string, Float32Array>>;

/** A fetch Response, structurally (the runtime needs no DOM types). */
export interface ResponseLike {
  readonly ok: boolean;
  readonly status: number;
  readonly statusText?: string;
  readonly url?: string;
  readonly bodyUsed?: boolean;
  readonly headers: { get(name: string): string | null };
  readonly body: ReadableStreamLike | null;
  arrayBuffer(): Promise<ArrayBuffer>;
}
/** A ReadableStream of bytes, structurally. */
export interface ReadableStreamLike {
  getReader(): { read(): Promise<{ done: boolean; value?: unknown }>; cancel(reason?: unknown): Promise<void>; releaseLock(): void };
}
/** A Blob or File, structurally. */
export interface BlobLike {
  readonly size: number;
  stream(): ReadableStreamLike;
  arrayBuffer(): Promise<ArrayBuffer>;
}
/** What loadWeights takes asynchronously: a URL (in Node also a file path or file: URL), a Response, a Blob or a byte stream. */
export type WeightStream = string | URLLike | ResponseLike | BlobLike | ReadableStreamLike;
/** A URL object, structurally. */
export interface URLLike {
  readonly href: string;
  readonly protocol: string;
}

export type { LoadOptions } from './options.ts';

/** Checks loadWeights' options against their declaration (options.ts LOAD_OPTIONS). */
export function checkLoadOptions(options: unknown): LoadOptions {
  return checkOptions('loadWeights', LOAD_OPTIONS, options);
}

/** One tensor offered for a weight: from a file (values decoded on request) or from a map. */
export interface Offered {
  readonly name: string;
  readonly dtype: string;
  /** undefined for a map's Float32Array (it has a length, not a shape) */
  readonly shape: readonly number[] | undefined;
  readonly count: number;
  values(): Float32Array | undefined;
}

const countOf = (shape: readonly number[]) => shape.reduce((a, c) => a * c, 1);

function offeredFromFile(file: SafetensorsFile): Offered[] {
  return file.entries.map((x) => ({ name: x.name, dtype: x.dtype, shape: x.shape, count: countOf(x.shape), values: () => decodeTensor(file, x) }));
}

function offeredFromMap(src: Readonly<Record<string, unknown>>): Offered[] {
  const out: Offered[] = [];
  for (const [name, v] of Object.entries(src)) {
    if (v === undefined) continue; // { name: undefined } is a missing weight
    const f32 = typeName(v) === 'Float32Array' ? (v as Float32Array) : undefined;
    out.push({ name, dtype: f32 ? 'F32' : typeName(v), shape: undefined, count: f32?.length ?? 0, values: () => f32 });
  }
  return out;
}

/** The user's rename applied: the offered tensors under their new names (skipped ones dropped). */
function renamed(list: readonly Offered[], rename: LoadOptions['rename']): Offered[] {
  if (!rename) return [...list];
  const out: Offered[] = [];
  const from = new Map<string, string>();
  for (const t of list) {
    let to: unknown;
    if (typeof rename === 'function') {
      to = rename(t.name);
      if (to === undefined) to = t.name;
    } else to = Object.hasOwn(rename, t.name) ? rename[t.name] : t.name;
    if (to === null) continue;
    if (typeof to !== 'string') throw new NncError(`loadWeights option rename gave ${typeName(to)} for ${showName(t.name)}; it must give a weight name (a string), or null to skip the tensor`);
    const other = from.get(to);
    if (other !== undefined) throw new NncError(`loadWeights option rename gives both ${showName(other)} and ${showName(t.name)} the name ${showName(to)}; each weight can come from one tensor`);
    from.set(to, t.name);
    out.push(to === t.name ? t : { ...t, name: to });
  }
  return out;
}

/** One weight of the model against the checkpoint. */
export interface WeightRow {
  readonly weight: WeightInfo;
  /** The tensor it takes (absent when missing). */
  readonly tensor: Offered | undefined;
  readonly how: 'name' | 'prefix' | 'stock' | undefined;
  /** What is wrong, as a line of the error message (absent when the tensor fits). */
  readonly problem: string | undefined;
}

/** A comparison of a checkpoint with a model's manifest: what matched and how, and what is wrong. */
export interface WeightReport {
  readonly resolution: Resolution;
  /** One per manifest weight, in manifest order. */
  readonly rows: readonly WeightRow[];
  /** Tensors no weight took, in checkpoint order. */
  readonly extra: readonly Offered[];
  /** Every problem as a line: the rows' problems, then one per extra tensor. */
  readonly problems: readonly string[];
  /** Lines saying which mappings were used (prefix, stock layout). */
  readonly mapping: readonly string[];
  /** Likely renames for what is left: [checkpoint name, weight name]. */
  readonly suggestions: readonly [string, string][];
}

function compare(manifest: readonly WeightInfo[], list: readonly Offered[], fromMap: boolean): WeightReport {
  const byName = new Map(list.map((t) => [t.name, t]));
  const exact = list.length === manifest.length && manifest.every((w) => byName.has(w.name));
  const resolution: Resolution = exact
    ? { source: new Map(manifest.map((w) => [w.name, { name: w.name, how: 'name' as const }])), prefix: '', stacks: [], missing: [], extra: [] }
    : resolveNames(manifest, list.map((t) => t.name));
  const rows = manifest.map((w): WeightRow => {
    const src = resolution.source.get(w.name);
    if (!src) return { weight: w, tensor: undefined, how: undefined, problem: `missing weight '${w.name}' (${w.layer}, expected shape [${w.shape.join(', ')}])` };
    const t = byName.get(src.name)!;
    const what = src.name === w.name ? `weight '${w.name}'` : `weight '${w.name}' (${showName(src.name)} in the checkpoint)`;
    let problem: string | undefined;
    if (!FLOAT_DTYPES.includes(t.dtype)) {
      problem = fromMap
        ? `${what} is ${t.dtype === 'null' ? 'null' : `${/^[AEIOU]/i.test(t.dtype) ? 'an' : 'a'} ${t.dtype}`}, expected a Float32Array of ${countOf(w.shape)} values`
        : `${what} has dtype ${t.dtype}, expected F32, F16 or BF16 (save it with tensor.float())`;
    } else if (t.shape ? !(t.shape.length === w.shape.length && t.shape.every((d, i) => d === w.shape[i])) : t.count !== countOf(w.shape)) {
      problem = `${what} has shape [${(t.shape ?? [t.count]).join(', ')}], expected [${w.shape.join(', ')}]`;
    }
    return { weight: w, tensor: t, how: src.how, problem };
  });
  const extra = resolution.extra.map((n) => byName.get(n)!);
  const problems = [
    ...rows.flatMap((r) => (r.problem ? [r.problem] : [])),
    ...extra.map((t) => `unexpected weight ${showName(t.name)}: this model has no parameter of that name`),
  ];
  const mapping: string[] = [];
  if (resolution.prefix) mapping.push(`prefix '${resolution.prefix}' stripped from the checkpoint's names`);
  for (const u of resolution.stacks) {
    const layout = `nn.Transformer${u.stack.kind === 'encoder' ? 'Encoder' : 'Decoder'}${u.lone ? 'Layer' : ''}`;
    const norm = !u.lone && u.stack.norm.some((n) => resolution.source.get(n)?.how === 'stock') ? ` with its final norm '${u.prefix}norm'` : '';
    mapping.push(`${describeStack(u.stack)} read as PyTorch's ${u.lone ? 'lone ' : ''}${layout} at ${u.prefix ? `'${u.prefix}'` : 'the top level'}${u.lone ? '' : ` ('${u.prefix}layers.N.…')`}${norm}`);
  }
  return { resolution, rows, extra, problems, mapping, suggestions: likelyRenames(resolution.missing, extra) };
}

const MAX_LINES = 40;

/** "cannot load weights:" and the problems, one per line, at most MAX_LINES of them. */
const listed = (problems: readonly string[]): string =>
  `cannot load weights:\n  ${(problems.length > MAX_LINES ? [...problems.slice(0, MAX_LINES), `… and ${problems.length - MAX_LINES} more`] : problems).join('\n  ')}`;

/** The report as an error message: the problems, then what was matched through a mapping, then likely renames. */
function reportError(r: WeightReport): NncError {
  let msg = listed(r.problems);
  if (r.mapping.length) msg += `\nmatched so far through: ${r.mapping.join('; ')}`;
  if (r.suggestions.length) {
    const pairs = r.suggestions.map(([f, t]) => `${JSON.stringify(f)}: ${JSON.stringify(t)}`).join(', ');
    msg += `\nlikely renames (same shape, similar name — check them): loadWeights(src, { rename: { ${pairs} } })`;
  }
  if (r.resolution.missing.length || r.resolution.extra.length) msg += `\n(\`nnc weights SPEC.nn --check FILE.safetensors\` lists every weight and tensor side by side)`;
  return new NncError(msg);
}

/** "3 non-finite values (first: NaN at [1, 2])", or undefined when every value is finite. */
export function nonFinite(values: Float32Array, shape: readonly number[]): string | undefined {
  // fast path: NaN and ±Infinity times 0 are NaN, and NaN survives the sum
  let zero = 0;
  for (let i = 0; i < values.length; i++) zero += values[i]! * 0;
  if (zero === 0) return undefined;
  let count = 0;
  let first = -1;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v - v !== 0) {
      if (first < 0) first = i;
      count++;
    }
  }
  const index: number[] = [];
  let rest = first;
  for (let d = shape.length - 1; d >= 0; d--) {
    index.unshift(rest % shape[d]!);
    rest = Math.floor(rest / shape[d]!);
  }
  return `${count} non-finite value${count > 1 ? 's' : ''} (first: ${values[first]} at [${index.join(', ')}])`;
}

/** Compares a checkpoint (safetensors bytes or a weight map) with a manifest, without loading anything. */
export function compareWeights(src: WeightSource, manifest: readonly WeightInfo[], options: LoadOptions = {}): WeightReport {
  const opts = checkLoadOptions(options);
  const kind = typeName(src);
  let list: Offered[];
  let fromMap = false;
  if (kind === 'Uint8Array' || kind === 'ArrayBuffer') {
    list = offeredFromFile(readSafetensors(src as Uint8Array | ArrayBuffer));
  } else if (kind === 'Object') {
    list = offeredFromMap(src as Readonly<Record<string, unknown>>);
    fromMap = true;
  } else {
    throw new NncError(`loadWeights expects safetensors bytes (Uint8Array | ArrayBuffer), a { name: Float32Array } map, or — returning a Promise — a URL, a fetch Response, a Blob or a ReadableStream of bytes; got ${kind}`);
  }
  return compare(manifest, renamed(list, opts.rename), fromMap);
}

/** The weights by manifest name, as float32, checked; throws an NncError naming every problem. */
export function weightMap(src: WeightSource, manifest: readonly WeightInfo[], options: LoadOptions = {}): Map<string, Float32Array> {
  const report = compareWeights(src, manifest, options);
  if (report.problems.length) throw reportError(report);
  const out = new Map<string, Float32Array>();
  const bad: string[] = [];
  for (const { weight: w, tensor } of report.rows) {
    const values = tensor!.values()!;
    const nf = options.allowNonFinite ? undefined : nonFinite(values, w.shape);
    if (nf) bad.push(`weight '${w.name}' has ${nf}`);
    out.set(w.name, values);
  }
  if (bad.length) throw new NncError(`${listed(bad)}\nfix the checkpoint, or pass { allowNonFinite: true } to load NaN and ±Infinity as they are`);
  return out;
}

/**
 * What a model in a worker is sent for `loadWeights(src, options)`: the source, and the options
 * without what cannot be posted — a rename function becomes the map it gives over the checkpoint's
 * names; onProgress and signal only concern streaming sources, which are read before this.
 */
export function postableWeights(src: WeightSource, options?: LoadOptions): [WeightSource, LoadOptions] {
  const { rename, allowNonFinite } = checkLoadOptions(options);
  const out: LoadOptions = allowNonFinite === undefined ? {} : { allowNonFinite };
  if (typeof rename !== 'function') return [src, rename ? { ...out, rename } : out];
  const kind = typeName(src);
  const names = kind === 'Uint8Array' || kind === 'ArrayBuffer' ? readSafetensors(src as Uint8Array | ArrayBuffer).entries.map((x) => x.name) : kind === 'Object' ? Object.keys(src) : [];
  const map: Record<string, string | null> = Object.create(null) as Record<string, string | null>;
  for (const n of names) {
    const to = rename(n);
    if (to !== undefined) map[n] = to;
  }
  return [src, { ...out, rename: map }];
}

// ───────────── asynchronous sources ─────────────

const isURL = (v: object): v is URLLike => typeof (v as URLLike).href === 'string' && typeof (v as URLLike).protocol === 'string';
const isFunction = (v: unknown, key: string) => typeof (v as Record<string, unknown> | null)?.[key] === 'function';

/** Whether loadWeights must fetch or stream this source (and so returns a Promise). */
export function isWeightStream(src: unknown): src is WeightStream {
  if (typeof src === 'string') return true;
  if (typeof src !== 'object' || src === null || ArrayBuffer.isView(src)) return false;
  if (isURL(src)) return true;
  return (isFunction(src, 'arrayBuffer') && 'headers' in src && 'body' in src) || (isFunction(src, 'stream') && typeof (src as BlobLike).size === 'number') || isFunction(src, 'getReader');
}

type Fetch = (url: string, init?: { signal?: unknown }) => Promise<ResponseLike>;

/** Reads a URL, path, Response, Blob or stream to bytes, reporting progress. */
export async function readWeightStream(src: WeightStream, options: LoadOptions = {}): Promise<Uint8Array> {
  const opts = checkLoadOptions(options);
  if (typeof src === 'string' || isURL(src)) {
    const href = typeof src === 'string' ? src : src.href;
    if (isNode && (href.startsWith('file:') || !/^[a-z][a-z0-9+.-]*:/i.test(href))) return readNodeFile(href, opts);
    const fetch = (globalThis as { fetch?: Fetch }).fetch;
    if (!fetch) throw new NncError(`cannot load weights from '${href}': this JavaScript environment has no fetch(); pass the bytes instead`);
    let res: ResponseLike;
    try {
      res = await fetch(href, opts.signal ? { signal: opts.signal } : {});
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      throw new NncError(`cannot load weights from '${href}': ${(e as Error).message}${(e as { cause?: { message?: string } }).cause?.message ? ` (${(e as { cause: { message: string } }).cause.message})` : ''}`);
    }
    return readResponse(res, `'${href}'`, opts);
  }
  if (isFunction(src, 'arrayBuffer') && 'headers' in src) {
    const url = (src as ResponseLike).url;
    return readResponse(src as ResponseLike, url ? `'${url}'` : 'the Response', opts);
  }
  if (isFunction(src, 'stream')) return readStream((src as BlobLike).stream(), (src as BlobLike).size, opts);
  return readStream(src as ReadableStreamLike, undefined, opts);
}

/** `where`: the URL quoted, or 'the Response'. */
async function readResponse(res: ResponseLike, where: string, opts: LoadOptions): Promise<Uint8Array> {
  if (!res.ok) throw new NncError(`cannot load weights from ${where}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`);
  if (res.bodyUsed) throw new NncError(`cannot load weights from ${where}: its body has already been read (pass a fresh Response, or the bytes)`);
  // Content-Length counts encoded bytes; with a Content-Encoding the decoded total is unknown
  const length = Number(res.headers.get('content-length') ?? NaN);
  const encoded = (res.headers.get('content-encoding') ?? 'identity') !== 'identity';
  const total = Number.isSafeInteger(length) && length >= 0 && !encoded ? length : undefined;
  if (!res.body) {
    const bytes = new Uint8Array(await res.arrayBuffer());
    opts.onProgress?.(bytes.length, bytes.length);
    return bytes;
  }
  return readStream(res.body, total, opts);
}

/** A buffer of n bytes, or an NncError when the engine cannot allocate it. */
function bytesFor(n: number): Uint8Array {
  try {
    return new Uint8Array(n);
  } catch {
    throw new NncError(`cannot load weights: no memory for a buffer of ${n} bytes`);
  }
}

/** Reads a byte stream into one buffer (preallocated when the total is known), calling onProgress per chunk. */
async function readStream(stream: ReadableStreamLike, total: number | undefined, opts: LoadOptions): Promise<Uint8Array> {
  const reader = stream.getReader();
  // a claimed total is trusted up to 1 GiB for the first allocation; past that the buffer grows as bytes come
  let buf = bytesFor(Math.min(total ?? 1 << 16, 1 << 30));
  let loaded = 0;
  let reported = -1;
  try {
    for (;;) {
      if (opts.signal?.aborted) {
        await reader.cancel(opts.signal.reason).catch(() => undefined);
        throw opts.signal.reason ?? new NncError('loading weights was aborted');
      }
      let next: { done: boolean; value?: unknown };
      try {
        next = await reader.read();
      } catch (e) {
        if (opts.signal?.aborted) throw e;
        throw new NncError(`the download of the weights failed after ${loaded} bytes: ${(e as Error).message ?? String(e)}; try again`);
      }
      const { done, value } = next;
      if (done) break;
      if (typeName(value) !== 'Uint8Array') {
        await reader.cancel().catch(() => undefined);
        throw new NncError(`cannot load weights from a stream of ${typeName(value)}: it must give bytes (Uint8Array chunks)`);
      }
      const chunk = value as Uint8Array;
      if (loaded + chunk.length > buf.length) {
        const bigger = bytesFor(Math.max(buf.length * 2, loaded + chunk.length));
        bigger.set(buf.subarray(0, loaded));
        buf = bigger;
      }
      buf.set(chunk, loaded);
      loaded += chunk.length;
      opts.onProgress?.(loaded, total !== undefined && loaded <= total ? total : undefined);
      reported = loaded;
    }
  } finally {
    reader.releaseLock();
  }
  if (total !== undefined && loaded < total) throw new NncError(`the download of the weights ended after ${loaded} of ${total} bytes; try again`);
  if (reported !== loaded || total !== loaded) opts.onProgress?.(loaded, loaded);
  return loaded === buf.length ? buf : buf.slice(0, loaded);
}

interface FileHandleLike {
  stat(): Promise<{ size: number }>;
  read(buf: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  close(): Promise<void>;
}

/** Node: a file path or file: URL, read in chunks with progress (node:fs is imported only here). */
async function readNodeFile(href: string, opts: LoadOptions): Promise<Uint8Array> {
  // module names in variables: bundlers leave them alone (a browser never gets here)
  const fsName = 'node:fs/promises';
  const urlName = 'node:url';
  const fs = (await import(/* @vite-ignore */ fsName)) as { open(path: string, flags: string): Promise<FileHandleLike> };
  const path = href.startsWith('file:') ? ((await import(/* @vite-ignore */ urlName)) as { fileURLToPath(u: string): string }).fileURLToPath(href) : href;
  let handle: FileHandleLike;
  try {
    handle = await fs.open(path, 'r');
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new NncError(`cannot load weights from '${path}': ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  try {
    const { size } = await handle.stat();
    const buf = bytesFor(size);
    let loaded = 0;
    while (loaded < size) {
      if (opts.signal?.aborted) throw opts.signal.reason ?? new NncError('loading weights was aborted');
      const { bytesRead } = await handle.read(buf, loaded, Math.min(1 << 22, size - loaded), loaded);
      if (bytesRead === 0) break;
      loaded += bytesRead;
      opts.onProgress?.(loaded, size);
    }
    if (size === 0) opts.onProgress?.(0, 0);
    return loaded === size ? buf : buf.slice(0, loaded);
  } finally {
    await handle.close();
  }
}
