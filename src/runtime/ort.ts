/**
 * Backends 'onnxruntime' and 'onnxruntime-web': the model's ONNX graphs — the ones `nnc onnx` writes,
 * exported from the spec the generated module embeds when the weights load — run on ONNX Runtime:
 * onnxruntime-node (native, Node only) or onnxruntime-web (its WebAssembly execution provider;
 * browsers, and Node too), both optional peer dependencies. 'onnxruntime' is onnxruntime-node in Node
 * and onnxruntime-web elsewhere. forward() runs the forward graph; generate() and stream() are nnc's
 * own decoding (src/runtime/decode.ts: greedy, beam, sampling) over a DecodeSession that runs the
 * encoder once and the decoder-step graph once per step, carrying its `present.*` outputs (recurrent
 * states, key/value caches) to the next step's `past_key_values.*` inputs, reordered by beam parents.
 */
import type { Plan, GenPlan } from './plan.ts';
import type { BackendName, CreateOptions, ModelManifest, SpecSource, Tensor } from './types.ts';
import type { NncModel } from './model.ts';
import type { OnnxDecodeIO, OnnxGraphs } from './onnx-io.ts';
import { NncError } from './errors.ts';
import { threadCount } from './backends.ts';
import { isNode } from './host.ts';
import { importOptional } from './optional.ts';
import { isWeightStream, readWeightStream, weightMap, type LoadOptions, type WeightSource, type WeightStream } from './weights.ts';
import { prepareInputs, type PreparedInput } from './inputs.ts';
import { decode, decodeStream, logProbs, type DecodeSession, type GenerateResult, type StepEvent, type StepOut } from './decode.ts';
import type { GenerateOptions } from './options.ts';

/** What nnc uses of onnxruntime-node and onnxruntime-web (their InferenceSession and Tensor; the web one's env). */
interface OrtTensor {
  readonly data: unknown;
  readonly dims: readonly number[];
}
interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
interface Ort {
  InferenceSession: { create(bytes: Uint8Array, options?: Record<string, unknown>): Promise<OrtSession> };
  Tensor: new (type: 'float32' | 'int32', data: Float32Array | Int32Array, dims: readonly number[]) => OrtTensor;
  env?: { wasm?: { numThreads?: number } };
}

/** The two ONNX Runtime packages, by the backend that runs on each. */
type Flavour = 'onnxruntime-node' | 'onnxruntime-web';

function ortModule(m: unknown): Ort | undefined {
  const o = m as Partial<Ort> & { default?: Partial<Ort> };
  const c = typeof o?.InferenceSession?.create === 'function' ? o : o?.default;
  return typeof c?.InferenceSession?.create === 'function' && typeof c.Tensor === 'function' ? (c as Ort) : undefined;
}

async function loadOrt(flavour: Flavour, backend: BackendName, given: unknown, from: string | undefined): Promise<Ort> {
  if (given !== undefined && given !== null) {
    const o = ortModule(given);
    if (!o) throw new NncError(`createModel's onnxruntime option is not ${flavour} (no InferenceSession.create and Tensor): pass the module, import * as ort from '${flavour}'`);
    return o;
  }
  const { module, problems } = await importOptional(flavour, from, (m) => (ortModule(m) ? undefined : 'exports no InferenceSession'));
  if (module) return ortModule(module)!;
  const pass = isNode ? '' : ` and pass it: createModel({ backend: '${backend}', onnxruntime: ort }) after import * as ort from '${flavour}' (a page cannot import a package by name at run time)`;
  throw new NncError(
    `${problems.length ? `${flavour} could not be loaded (${problems.join('; ')})` : `${flavour} could not be imported`}: backend '${backend}' needs it (an optional peer dependency of nnc). ` +
      `Install it with 'npm install ${flavour}'${pass}, or use another backend ('wasm' runs everywhere).`,
  );
}

/** Rows `rows` of a tensor whose first axis is rows (a new tensor; `rows` may repeat and reorder). */
function gatherRows(ort: Ort, t: OrtTensor, rows: ArrayLike<number>): OrtTensor {
  const R = t.dims[0]!;
  const src = t.data as Float32Array | Int32Array;
  const w = R ? src.length / R : 0;
  const out = new (src.constructor as Float32ArrayConstructor | Int32ArrayConstructor)(rows.length * w);
  for (let r = 0; r < rows.length; r++) out.set(src.subarray(rows[r]! * w, (rows[r]! + 1) * w), r * w);
  return new ort.Tensor(src instanceof Int32Array ? 'int32' : 'float32', out, [rows.length, ...t.dims.slice(1)]);
}

const i32 = (ort: Ort, data: Int32Array, dims: readonly number[] = [data.length]) => new ort.Tensor('int32', data, dims);

/** A prepared input as the graphs take it: int32 token ids or float32 vectors, and int32 lengths. */
function feedOf(ort: Ort, p: PreparedInput, form: 'tokens' | 'vectors'): { data: OrtTensor; lengths: OrtTensor } {
  const dims = form === 'tokens' ? [p.B, p.T] : [p.B, p.T, p.data.length / (p.B * p.T || 1)];
  return { data: form === 'tokens' ? i32(ort, Int32Array.from(p.data), dims) : new ort.Tensor('float32', p.data, dims), lengths: i32(ort, Int32Array.from(p.lengths)) };
}

interface Graphs {
  readonly forward: OrtSession;
  readonly encoder?: OrtSession;
  readonly decoder?: OrtSession;
  readonly io?: OnnxDecodeIO;
}

class OrtModel {
  readonly backend: BackendName;
  readonly device: string;
  private graphs: Promise<Graphs> | undefined;
  private disposed = false;

  readonly manifest: ModelManifest;
  private readonly plan: Plan;
  /** The model's IR (src/export/onnx-spec.ts made it; opaque here). */
  private readonly ir: unknown;
  private readonly ort: Ort;
  private readonly exporter: Exporter['onnxFromModel'];
  private readonly sessionOptions: Record<string, unknown>;
  private readonly allowNonFinite: boolean;

  constructor(backend: BackendName, device: string, manifest: ModelManifest, plan: Plan, ir: unknown, ort: Ort, exporter: Exporter['onnxFromModel'], sessionOptions: Record<string, unknown>, allowNonFinite: boolean) {
    this.backend = backend;
    this.device = device;
    this.manifest = manifest;
    this.plan = plan;
    this.ir = ir;
    this.ort = ort;
    this.exporter = exporter;
    this.sessionOptions = sessionOptions;
    this.allowNonFinite = allowNonFinite;
  }

  private live(): void {
    if (this.disposed) throw new NncError(`this ${this.manifest.model} model was disposed: create a new one with createModel()`);
  }

  loadWeights(src: WeightSource | WeightStream, options?: LoadOptions): void | Promise<void> {
    this.live();
    if (isWeightStream(src)) return readWeightStream(src, options).then((bytes) => this.loadWeights(bytes, options));
    const m = weightMap(src, this.manifest.weights, options);
    const e = this.exporter(this.ir, m);
    const old = this.graphs;
    const create = (bytes: Uint8Array) => this.ort.InferenceSession.create(bytes, this.sessionOptions);
    // the sessions start now; forward() and generate() wait for them
    this.graphs = (async () => ({
      forward: await create(e.forward),
      ...(e.encoder ? { encoder: await create(e.encoder) } : {}),
      ...(e.decoder ? { decoder: await create(e.decoder), io: e.io.decoder } : {}),
    }))();
    this.graphs.catch(() => undefined);
    if (old) void releaseGraphs(old);
  }

  /** @internal the sessions, once created. */
  async sessions(method: string): Promise<Graphs> {
    this.live();
    if (!this.graphs) throw new NncError(`${method}() before loadWeights(): load the ${this.manifest.model} weights first`);
    return this.graphs;
  }

  /** @internal */
  prepare(inputs: unknown, which: readonly number[]): { prepared: PreparedInput[]; feeds: Record<string, OrtTensor> } {
    const declared = which.map((i) => this.manifest.inputs[i]!);
    // ONNX Runtime only reads its inputs: a Float32Array the app passed is fed as it is
    const prepared = prepareInputs(inputs, declared, this.allowNonFinite, true);
    const feeds: Record<string, OrtTensor> = {};
    prepared.forEach((p, k) => {
      const f = feedOf(this.ort, p, declared[k]!.form);
      feeds[declared[k]!.name] = f.data;
      feeds[`${declared[k]!.name}.lengths`] = f.lengths;
    });
    return { prepared, feeds };
  }

  async forward(inputs: unknown): Promise<Record<string, Tensor>> {
    this.live();
    const { feeds } = this.prepare(inputs, this.manifest.inputs.map((_, k) => k));
    const { forward } = await this.sessions('forward');
    const out = (await forward.run(feeds))[this.manifest.output.name]!;
    return { [this.manifest.output.name]: { data: out.data as Float32Array, shape: [...out.dims] } };
  }

  private session(method: string, options: GenerateOptions | undefined): GenPlan {
    this.live();
    const gen = this.plan.gen;
    if (!gen) throw new NncError(`${this.manifest.model} cannot generate: ${this.plan.noGen}`);
    if (!this.graphs) throw new NncError(`${method}() before loadWeights(): load the ${this.manifest.model} weights first`);
    if (options && typeof options === 'object' && options.attention === true && gen.attention === undefined) {
      throw new NncError(`generate option 'attention' is true, but ${gen.noAttention}`);
    }
    return gen;
  }

  async generate(inputs: unknown, options?: GenerateOptions): Promise<GenerateResult> {
    const gen = this.session('generate', options);
    return decode(new OrtDecode(this, gen, inputs, this.ort), options ?? {}, this.manifest.decode);
  }

  async *stream(inputs: unknown, options?: GenerateOptions): AsyncGenerator<StepEvent, GenerateResult> {
    const gen = this.session('stream', options);
    return yield* decodeStream(new OrtDecode(this, gen, inputs, this.ort), options ?? {}, this.manifest.decode);
  }

  /** vjp, saveWeights and nnc/train's steps (trainForward) refuse: ONNX Runtime runs inference graphs only, with no backward pass. */
  private untrainable(method: string): never {
    throw new NncError(`${method}() is not supported on the ${this.backend} backend: it runs the model's exported inference graphs, which have no backward pass; create the model with backend 'wasm' or 'cpu' to train it or take its gradients`);
  }

  async vjp(): Promise<never> {
    this.untrainable('vjp');
  }

  saveWeights(): never {
    this.untrainable('saveWeights');
  }

  /** @internal nnc/train's step(): refused as vjp is, naming the call the user made. */
  async trainForward(_inputs?: unknown, _masks?: unknown, method = 'vjp'): Promise<never> {
    this.untrainable(method);
  }

  dispose(): void {
    if (this.graphs) void releaseGraphs(this.graphs);
    this.graphs = undefined;
    this.disposed = true;
  }
}

async function releaseGraphs(g: Promise<Graphs>): Promise<void> {
  try {
    const s = await g;
    await Promise.all([s.forward, s.encoder, s.decoder].map((x) => x?.release()));
  } catch {
    /* a failed load has nothing to release */
  }
}

/** One generate() call over the encoder and decoder-step graphs. */
class OrtDecode implements DecodeSession {
  readonly batch: number;
  readonly vocab: number;
  readonly inputVocab: number;
  readonly inputName: string;
  private readonly prepared: PreparedInput[];
  private readonly feeds: Record<string, OrtTensor>;
  /** Per row: what every step feeds unchanged (source, captures), the carried past, positions, key lengths. */
  private fixed: Record<string, OrtTensor> = {};
  private past: Record<string, OrtTensor> = {};
  private positions = new Int32Array(0);
  private keyLengths = new Int32Array(0);
  private cacheStart = 0;
  private rows = 0;
  private S = 1;

  private readonly model: OrtModel;
  private readonly gen: GenPlan;
  private readonly ort: Ort;

  constructor(model: OrtModel, gen: GenPlan, inputs: unknown, ort: Ort) {
    this.model = model;
    this.gen = gen;
    this.ort = ort;
    // seq2seq: generate() takes the source (the first input); a language model: its prompt
    const which = [gen.seq2seq ? 0 : gen.input];
    ({ prepared: this.prepared, feeds: this.feeds } = model.prepare(inputs, which));
    this.batch = this.prepared[0]!.B;
    this.vocab = gen.vocab;
    this.inputVocab = gen.inputVocab;
    this.inputName = model.manifest.inputs[gen.input]!.name;
  }

  async begin(k: number, bos: number, wantAttention: boolean): Promise<StepOut> {
    const { encoder, decoder, io } = await this.model.sessions('generate');
    const B = this.batch;
    const rep = Int32Array.from({ length: B * k }, (_, r) => Math.floor(r / k));
    this.rows = B * k;
    if (encoder) {
      const enc = await encoder.run(this.feeds);
      this.S = this.prepared[0]!.T;
      for (const name of io!.source) this.fixed[name] = gatherRows(this.ort, this.feeds[name]!, rep);
      for (const name of io!.captures) this.fixed[name] = gatherRows(this.ort, enc[name]!, rep);
      for (const p of io!.past) this.past[p.past] = gatherRows(this.ort, enc[p.present]!, rep);
      this.positions = new Int32Array(this.rows);
      this.keyLengths = new Int32Array(this.rows);
      this.cacheStart = 0;
      return this.step(new Int32Array(this.rows).fill(bos), undefined, wantAttention);
    }
    // a language model: the prompt in one call, from empty caches and zero states
    const p = this.prepared[0]!;
    const lens = Int32Array.from(p.lengths);
    const past: Record<string, OrtTensor> = {};
    for (const x of io!.past) past[x.past] = x.kind === 'cache' ? new this.ort.Tensor('float32', new Float32Array(0), [B, 0, x.width]) : new this.ort.Tensor('float32', new Float32Array(B * x.width), [B, x.width]);
    const out = await decoder!.run({ ...past, ...this.extra(io!, new Int32Array(B), lens, p.T), [io!.input]: this.feeds[io!.input]!, [io!.lengths]: this.feeds[io!.lengths]! });
    for (const x of io!.past) this.past[x.past] = gatherRows(this.ort, out[x.present]!, rep);
    this.positions = Int32Array.from(rep, (b) => lens[b]!);
    this.keyLengths = Int32Array.from(rep, (b) => lens[b]!);
    this.cacheStart = p.T;
    const dist = out[io!.output]!;
    const V = this.vocab;
    const x = dist.data as Float32Array;
    const rows = new Float32Array(this.rows * V);
    for (let r = 0; r < this.rows; r++) {
      const b = rep[r]!;
      rows.set(x.subarray((b * p.T + lens[b]! - 1) * V, (b * p.T + lens[b]!) * V), r * V);
    }
    return { logp: logProbs(rows, V, this.gen.readout) };
  }

  /** The decoder step's position and key-length inputs, when it has them. */
  private extra(io: OnnxDecodeIO, positions: Int32Array, keyLengths: Int32Array, cacheStart: number): Record<string, OrtTensor> {
    const f: Record<string, OrtTensor> = {};
    if (io.offsets) f[io.offsets] = i32(this.ort, positions);
    if (io.keyLengths) {
      f[io.keyLengths] = i32(this.ort, keyLengths);
      f[io.cacheStart!] = i32(this.ort, Int32Array.of(cacheStart), []);
    }
    return f;
  }

  async step(tokens: Int32Array, parents: Int32Array | undefined, wantAttention: boolean): Promise<StepOut> {
    const { decoder, io } = await this.model.sessions('generate');
    const N = this.rows;
    if (parents) for (const k of Object.keys(this.past)) this.past[k] = gatherRows(this.ort, this.past[k]!, parents);
    const max = this.gen.maxPositions;
    if (max !== undefined) {
      const last = this.positions.reduce((m, p) => Math.max(m, p), 0);
      if (last >= max) throw new NncError(`generate() reached position ${last}, but the model's learned positions cover ${max} (positional learned, max_len = ${max}): use a shorter prompt or maxLen`);
    }
    const out = await decoder!.run({
      ...this.fixed, ...this.past, ...this.extra(io!, this.positions.slice(), this.keyLengths, this.cacheStart),
      [io!.input]: i32(this.ort, Int32Array.from(tokens), [N, 1]),
      [io!.lengths]: i32(this.ort, new Int32Array(N).fill(1)),
    });
    for (const x of io!.past) this.past[x.past] = out[x.present]!;
    for (let r = 0; r < N; r++) this.positions[r]! += 1;
    const logp = logProbs(out[io!.output]!.data as Float32Array, this.vocab, this.gen.readout);
    const attention = wantAttention && io!.attention ? (out[io!.attention]!.data as Float32Array) : undefined;
    return { logp, attention, srcLen: this.S };
  }
}

/** What the 'nnc' package (and 'nnc/onnx') exports for these backends (src/export/onnx-spec.ts): the model's IR from the embedded spec (opaque here), and its graphs with weights. */
interface Exporter {
  modelFromSpec(spec: SpecSource, manifest: ModelManifest): unknown;
  onnxFromModel(ir: unknown, weights: ReadonlyMap<string, Float32Array>): OnnxGraphs;
}

const isExporter = (m: unknown): m is Exporter => typeof (m as Partial<Exporter> | null)?.onnxFromModel === 'function' && typeof (m as Partial<Exporter>).modelFromSpec === 'function';

/** nnc's ONNX exporter: `given` (createModel's exporter option), or imported from the 'nnc' package. */
async function loadExporter(backend: BackendName, given: unknown, from: string | undefined): Promise<Exporter> {
  if (given !== undefined && given !== null) {
    const m = (given as { default?: unknown }).default !== undefined && !isExporter(given) ? (given as { default: unknown }).default : given;
    if (!isExporter(m)) throw new NncError(`createModel's exporter option is not nnc's ONNX exporter (no modelFromSpec and onnxFromModel): pass the module, import * as exporter from 'nnc/onnx'`);
    return m;
  }
  // the compiler, as the package exports it (src/index.ts; dist/index.js when installed)
  const found = await importOptional('nnc', from, (m) => (isExporter(m) ? undefined : 'exports no ONNX exporter (is it an older nnc?)'));
  if (found.module) return found.module as Exporter;
  const pass = isNode ? 'install nnc where the app can import it' : `pass it: createModel({ backend: '${backend}', exporter }) after import * as exporter from 'nnc/onnx' (a page cannot import a package by name at run time)`;
  throw new NncError(`backend '${backend}' needs nnc's ONNX exporter (the 'nnc' package${found.problems.length ? `: ${found.problems.join('; ')}` : ', not found'}): ${pass}`);
}

/**
 * The model on backend 'onnxruntime' or 'onnxruntime-web'. `spec` is what the generated module
 * embeds; the compiler's front end and the ONNX exporter are imported from the 'nnc' package only now
 * (or given as createModel's exporter option).
 */
export async function createOrtModel(manifest: ModelManifest, plan: Plan, spec: SpecSource | undefined, options: CreateOptions, from?: string): Promise<NncModel<unknown, unknown, unknown>> {
  const backend = options.backend === 'onnxruntime-web' ? 'onnxruntime-web' : 'onnxruntime';
  if (!spec) throw new NncError(`backend '${backend}' needs a module compiled by this nnc (it embeds the spec its ONNX graphs are made from): recompile ${manifest.model}'s module with nnc compile`);
  const flavour: Flavour = backend === 'onnxruntime' && isNode ? 'onnxruntime-node' : 'onnxruntime-web';
  const ort = await loadOrt(flavour, backend, options.onnxruntime, from);
  const exporter = await loadExporter(backend, options.exporter, from);
  const ir = exporter.modelFromSpec(spec, manifest);
  const threads = options.threads === undefined ? undefined : await threadCount(options, (n) => n, "ONNX Runtime's default");
  let sessionOptions: Record<string, unknown>;
  if (flavour === 'onnxruntime-node') {
    sessionOptions = { graphOptimizationLevel: 'all', ...(threads !== undefined ? { intraOpNumThreads: threads, interOpNumThreads: 1 } : {}) };
  } else {
    // onnxruntime-web's threads are one setting for the page (env.wasm.numThreads, read when its first session starts)
    if (threads !== undefined && ort.env?.wasm) ort.env.wasm.numThreads = threads;
    sessionOptions = { graphOptimizationLevel: 'all', executionProviders: ['wasm'] };
  }
  const device = flavour === 'onnxruntime-node' ? 'onnxruntime-node (cpu)' : 'onnxruntime-web (wasm)';
  return new OrtModel(backend, device, manifest, plan, ir, ort, exporter.onnxFromModel, sessionOptions, options.allowNonFinite === true) as unknown as NncModel<unknown, unknown, unknown>;
}
