/**
 * The model object every generated module returns: it runs a compiled Plan (plan.ts) on an
 * executor. `forward` runs the whole plan; `generate` / `stream` run the encoder part once and
 * then the decoder part one token at a time (decode.ts drives the loop: greedy, beam, sampling),
 * keeping the recurrent state on the device between steps and reading back one distribution per
 * step.
 */
import type { Instr, Plan, RunInstr, ScanInstr, Size } from './plan.ts';
import type { BackendName, CreateOptions, Executor, InputInfo, InputTensor, KernelDef, Tensor, WeightInfo } from './types.ts';
import { NncError } from './errors.ts';
import { createExecutor } from './backends.ts';
import { createWorkerModel } from './worker.ts';
import { isWeightStream, readWeightStream, weightMap, type LoadOptions, type WeightSource, type WeightStream } from './weights.ts';
import { checkInputNames, prepareInput, type PreparedInput } from './inputs.ts';
import { decode, decodeStream, type DecodeSession, type GenerateOptions, type GenerateResult, type StepEvent, type StepOut } from './decode.js';

export interface ModelManifest {
  readonly model: string;
  readonly inputs: readonly InputInfo[];
  readonly output: { readonly name: string; readonly shape: readonly (number | string)[] };
  readonly weights: readonly WeightInfo[];
  readonly decode?: Readonly<Record<string, number | string | boolean | undefined>>;
}

/** What a generated module's create function returns, typed by the model's inputs and outputs. */
export interface NncModel<I, O, G = I> {
  /** The backend that actually runs. */
  readonly backend: BackendName;
  /** What runs underneath (e.g. gpu.js headlessgl). */
  readonly device: string;
  readonly manifest: ModelManifest;
  /**
   * Loads safetensors bytes (F32, F16 or BF16) or a { name: Float32Array } map holding the manifest's
   * weights, synchronously. Names match as nnc names them, through `options.rename`, a common prefix
   * (`module.`), or PyTorch's stock Transformer layout (docs/checkpoints.md).
   */
  loadWeights(src: WeightSource, options?: LoadOptions): void;
  /** Fetches or streams a safetensors file — a URL (in Node also a path), a fetch Response, a Blob, a ReadableStream — then loads it; `options.onProgress(loaded, total)` reports the bytes. */
  loadWeights(src: WeightStream, options?: LoadOptions): Promise<void>;
  /** Runs the model on a batch (teacher-forced for seq2seq). Padded steps never affect valid ones; their outputs are 0. */
  forward(inputs: I): Promise<O>;
  /** Decodes (greedy, beam or sampling; defaults from the spec's `decode` statement). */
  generate(inputs: G, options?: GenerateOptions): Promise<GenerateResult>;
  /** The same decoding, one event per step. */
  stream(inputs: G, options?: GenerateOptions): AsyncGenerator<StepEvent, GenerateResult>;
  /** Frees the weights and kernels; the model cannot be used afterwards. */
  dispose(): void;
  /** Language models: a decode session that starts each of `batch` rows from bos (generate's `lm` option, shallow fusion). */
  lmSession(batch: number): DecodeSession & { close(): void };
}

type Env = Map<string, unknown>;

interface Dims {
  B: number;
  T: number;
  S: number;
  /** Positions in the key/value caches (0 in forward), keys K = P + T, and where the caches' generated part starts (P0). */
  P: number;
  K: number;
  P0: number;
}

function sizeOf(s: Size, dims: Dims): number {
  let n = 1;
  for (const d of s) n *= typeof d === 'number' ? d : dims[d as keyof Dims];
  return n;
}

class Model {
  private ex: Executor | undefined;
  private w: Map<string, unknown> | undefined;
  readonly backend: BackendName;
  readonly device: string;
  readonly manifest: ModelManifest;
  private readonly kernels: Readonly<Record<string, KernelDef>>;
  private readonly plan: Plan;

  /** createModel's allowNonFinite: NaN and ±Infinity in vectors inputs are accepted. */
  private readonly allowNonFinite: boolean;

  constructor(manifest: ModelManifest, kernels: Readonly<Record<string, KernelDef>>, plan: Plan, ex: Executor, allowNonFinite = false) {
    this.allowNonFinite = allowNonFinite;
    this.manifest = manifest;
    this.kernels = kernels;
    this.plan = plan;
    this.ex = ex;
    this.backend = ex.backend;
    this.device = ex.device;
  }

  private live(): Executor {
    if (!this.ex) throw new NncError(`this ${this.manifest.model} model was disposed`);
    return this.ex;
  }

  private weights(method = 'forward'): Map<string, unknown> {
    if (!this.w) throw new NncError(`${method}() before loadWeights(): load the ${this.manifest.model} weights first`);
    return this.w;
  }

  /** The kernel a plan instruction names (generated with the plan: missing is a compiler bug). */
  private kernel(name: string): KernelDef {
    const k = this.kernels[name];
    if (k === undefined) throw new Error(`internal: kernel ${name} is not defined`);
    return k;
  }

  loadWeights(src: WeightSource | WeightStream, options?: LoadOptions): void | Promise<void> {
    const ex = this.live();
    if (isWeightStream(src)) return readWeightStream(src, options).then((bytes) => this.loadWeights(bytes, options));
    const m = weightMap(src, this.manifest.weights, options);
    this.releaseWeights();
    this.w = new Map(this.plan.params.map(([name, b]) => [b, ex.upload(m.get(name)!)]));
    for (const t of this.plan.tables ?? []) {
      const f = Float32Array.from({ length: t.dim }, (_, j) => Math.pow(10000, -(j - (j % 2)) / t.dim));
      this.w.set(t.buf, ex.upload(f));
    }
    // host executors pack the weight blocks their GEMMs read now, once, not on a first call
    if (ex.prepack) {
      const w = this.w;
      const uses: [string, readonly string[]][] = [];
      for (const i of [...this.plan.encode, ...this.plan.decode]) {
        if (i.op === 'run') uses.push([i.kernel, i.args]);
        else {
          for (const b of i.body) uses.push([b.kernel, b.args]);
          uses.push([i.step, i.args]);
        }
      }
      for (const [name, args] of uses) {
        const k = this.kernel(name);
        if (!k.gemm) continue;
        const bufs = args.map((a) => w.get(a));
        if (k.gemm.packs.every((p) => bufs[p[0]] !== undefined)) ex.prepack(k, bufs);
      }
    }
  }

  private releaseWeights(): void {
    if (this.w && this.ex) for (const v of this.w.values()) this.ex.release(v);
    this.w = undefined;
  }

  dispose(): void {
    this.releaseWeights();
    this.ex?.dispose();
    this.ex = undefined;
  }

  /** Validates and uploads inputs; returns the dims. */
  private prepare(inputs: unknown, which: readonly number[], env: Env, temps: unknown[]): { dims: Dims; prepared: PreparedInput[] } {
    const ex = this.live();
    // `which` holds indices of the plan's inputs, which are the manifest's inputs in order
    const declared = which.map((i) => this.manifest.inputs[i]!);
    const named = checkInputNames(inputs, declared);
    const prepared = declared.map((info) => prepareInput(info, Object.hasOwn(named, info.name) ? named[info.name] : undefined, this.allowNonFinite));
    // every model has an input and `which` names at least one; declared[k] is prepared[k]'s input
    const B = prepared[0]!.B;
    prepared.forEach((p, k) => {
      if (p.B !== B) throw new NncError(`input '${declared[k]!.name}' has ${p.B} rows but '${declared[0]!.name}' has ${B}: every input needs the same batch size`);
    });
    const dims: Dims = { B, T: 1, S: 1, P: 0, K: 1, P0: 1 };
    which.forEach((i, k) => {
      const pi = this.plan.inputs[i]!;
      const p = prepared[k]!;
      dims[pi.dim as 'T' | 'S'] = p.T;
      const d = ex.upload(p.data);
      const l = ex.upload(p.lengths);
      temps.push(d, l);
      env.set(pi.data, d);
      env.set(pi.lengths, l);
      // forward: positions start at 0, causal self-attention's keys are the input's own tokens
      if (pi.offsets) {
        const z = ex.zeros(B);
        temps.push(z);
        env.set(pi.offsets, z);
      }
      if (pi.keyLengths) env.set(pi.keyLengths, l);
    });
    dims.K = dims.T;
    dims.P0 = dims.T;
    // empty caches (never read: no key position is below P = 0)
    for (const c of this.plan.caches) {
      const z = ex.zeros(1);
      temps.push(z);
      env.set(c.cache, z);
    }
    return { dims, prepared };
  }

  /** Runs instructions; every buffer they make is recorded in `made` (to be released by the caller). */
  private async exec(instrs: readonly Instr[], env: Env, dims: Dims, made: unknown[], carries?: Map<string, unknown>, keep?: Map<string, unknown>): Promise<void> {
    const ex = this.live();
    const get = (name: string): unknown => {
      const v = env.get(name);
      if (v === undefined) throw new Error(`internal: buffer ${name} is not computed`);
      return v;
    };
    const scal: Record<string, number> = { B: dims.B, T: dims.T, S: dims.S, P: dims.P, K: dims.K, P0: dims.P0, t: 0, tp: 0 };
    const run = async (i: RunInstr, into: unknown[]) => {
      const out = await ex.run(this.kernel(i.kernel), i.args.map(get), scal, sizeOf(i.size, dims));
      into.push(out);
      env.set(i.out, out);
    };
    for (const i of instrs) {
      if (i.op === 'run') {
        await run(i, made);
        continue;
      }
      await this.scan(i, env, dims, scal, made, get, run, carries?.get(i.out), keep);
    }
  }

  private async scan(
    i: ScanInstr, env: Env, dims: Dims, scal: Record<string, number>, made: unknown[], get: (n: string) => unknown,
    run: (i: RunInstr, into: unknown[]) => Promise<void>, carried: unknown, keep?: Map<string, unknown>,
  ): Promise<void> {
    const ex = this.live();
    const L = dims[i.dim as keyof Dims];
    const S = i.stateSize;
    const first = i.reverse ? L - 1 : 0;
    const init = carried ?? (i.init ? get(i.init) : undefined);
    // the state before the first step sits in that step's own slot (zeros without an initial state)
    let hist = init === undefined ? ex.zeros(sizeOf(i.size, dims)) : await ex.placeRows(init, S, dims.B, L, first);
    for (let s = 0; s < L; s++) {
      const t = i.reverse ? L - 1 - s : s;
      scal['t'] = t;
      scal['tp'] = s === 0 ? t : i.reverse ? t + 1 : t - 1;
      env.set(i.out, hist);
      const temps: unknown[] = [];
      if (ex.runNow && ex.stepNow) {
        // a host executor runs a step synchronously: no promise per kernel in the time loop
        for (const b of i.body) {
          const out = ex.runNow(this.kernel(b.kernel), b.args.map(get), scal, sizeOf(b.size, dims));
          temps.push(out);
          env.set(b.out, out);
        }
        hist = ex.stepNow(this.kernel(i.step), hist, i.args.map(get), scal);
      } else {
        for (const b of i.body) await run(b, temps);
        hist = await ex.step(this.kernel(i.step), hist, i.args.map(get), scal, sizeOf(i.size, dims));
      }
      const last = s === L - 1;
      for (const v of temps) {
        const exported = last && keep && i.exports && Object.values(i.exports).some((e) => env.get(e) === v);
        if (!exported) ex.release(v);
      }
      if (last && keep && i.exports) for (const [name, b] of Object.entries(i.exports)) keep.set(`${i.out}.${name}`, env.get(b));
    }
    made.push(hist);
    env.set(i.out, hist);
  }

  async forward(inputs: unknown): Promise<Record<string, Tensor>> {
    const ex = this.live();
    const w = this.weights();
    const env: Env = new Map(w);
    const temps: unknown[] = [];
    try {
      const { dims } = this.prepare(inputs, this.manifest.inputs.map((_, k) => k), env, temps);
      await this.exec([...this.plan.encode, ...this.plan.decode], env, dims, temps);
      const shape = this.plan.output.shape.map((d) => (typeof d === 'number' ? d : dims[d as keyof Dims]));
      const data = await ex.read(env.get(this.plan.output.buf), sizeOf(this.plan.output.shape, dims));
      return { [this.manifest.output.name]: { data, shape } };
    } finally {
      for (const v of temps) ex.release(v);
    }
  }

  private session(inputs: unknown, method: string): Session {
    const gen = this.plan.gen;
    if (!gen) throw new NncError(`${this.manifest.model} cannot generate: ${this.plan.noGen}`);
    this.weights(method);
    return new Session(this, inputs);
  }

  async generate(inputs: unknown, options?: GenerateOptions): Promise<GenerateResult> {
    const s = this.session(inputs, 'generate');
    return decode(s, options ?? {}, this.defaults()).finally(() => s.close());
  }

  async *stream(inputs: unknown, options?: GenerateOptions): AsyncGenerator<StepEvent, GenerateResult> {
    const s = this.session(inputs, 'stream');
    try {
      return yield* decodeStream(s, options ?? {}, this.defaults());
    } finally {
      s.close();
    }
  }

  /**
   * A decode session over `batch` rows, each starting from this language model's bos (one token of
   * prompt): what generate()'s `lm` option (shallow fusion) runs beside another model.
   */
  lmSession(batch: number): Session {
    const gen = this.plan.gen;
    if (!gen || gen.seq2seq) throw new NncError(`${this.manifest.model} is not a language model (it does not predict the next token of its own input), so it cannot be generate()'s 'lm'`);
    const bos = this.manifest.decode?.['bos'];
    const name = this.manifest.inputs[gen.input]!.name;
    return this.session({ [name]: Array.from({ length: batch }, () => [typeof bos === 'number' ? bos : 0]) }, 'generate');
  }

  /** The spec's `decode` statement as generate() defaults. */
  private defaults(): Record<string, unknown> {
    return specDefaults(this.manifest);
  }

  // ── what Session uses ──
  /** @internal */
  internals() {
    return { ex: this.live(), w: this.weights(), plan: this.plan, prepare: this.prepare.bind(this), exec: this.exec.bind(this) };
  }
}

/** One generate() call: the encoder's results and the decoder's carried state, on the device. */
class Session implements DecodeSession {
  readonly batch: number;
  readonly vocab: number;
  private rows = 0;
  private dims!: Dims;
  private readonly base: Env;
  private readonly held: unknown[] = [];
  private carries = new Map<string, unknown>();
  /** Key/value caches by cache buffer name, [rows, P, width]. */
  private caches = new Map<string, unknown>();
  private lengthsOfPrompt?: Float32Array;
  /** Per row: the position of the next token fed. */
  private positions = new Float32Array(0);
  /** Per row: valid key positions of the prompt (language model). */
  private keyLengths: unknown;
  private readonly model: Model;

  constructor(model: Model, inputs: unknown) {
    this.model = model;
    const { plan, w } = model.internals();
    this.base = new Map(w);
    this.vocab = plan.gen!.vocab;
    // validated now, so that a bad input fails before anything runs
    const which = plan.gen!.seq2seq ? [0] : [plan.gen!.input];
    const { dims, prepared } = model.internals().prepare(inputs, which, this.base, this.held);
    this.dims = dims;
    this.batch = dims.B;
    this.lengthsOfPrompt = prepared[0]!.lengths; // the one input of `which`
  }

  private get m() {
    return this.model.internals();
  }

  close(): void {
    const { ex } = this.m;
    for (const v of this.held) ex.release(v);
    for (const v of this.carries.values()) ex.release(v);
    for (const v of this.caches.values()) ex.release(v);
    this.held.length = 0;
    this.carries.clear();
    this.caches.clear();
  }

  private async gather(b: unknown, width: number, idx: Int32Array): Promise<unknown> {
    const out = await this.m.ex.gatherRows(b, width, idx);
    this.held.push(out);
    return out;
  }

  async begin(k: number, bos: number, wantAttention: boolean): Promise<StepOut> {
    const { plan, ex } = this.m;
    const gen = plan.gen!;
    const B = this.batch;
    const rep = Int32Array.from({ length: B * k }, (_, r) => Math.floor(r / k));
    if (gen.seq2seq) {
      // the encoder runs once; its results (and the decoder's initial states) are expanded to B·k rows
      await this.m.exec(plan.encode, this.base, this.dims, this.held);
      for (const c of gen.captures) {
        const width = sizeOf(c.shape.slice(1), this.dims);
        this.base.set(c.buf, await this.gather(this.base.get(c.buf), width, rep));
      }
      this.rows = B * k;
      // the decoder starts empty: positions from 0, every cached key valid (P0 = 0)
      this.dims = { ...this.dims, B: this.rows, T: 1, P: 0, K: 1, P0: 0 };
      this.positions = new Float32Array(this.rows);
      this.keyLengths = ex.zeros(this.rows);
      this.held.push(this.keyLengths);
      return this.step(new Int32Array(this.rows).fill(bos), undefined, wantAttention);
    }
    // language model: consume the prompt, then keep each recurrence's state at the last valid step
    const env: Env = new Map(this.base);
    const made: unknown[] = [];
    try {
      await this.m.exec(plan.decode, env, this.dims, made);
      const P = this.dims.T;
      const lens = this.lengthsOfPrompt!;
      // lens has B entries; every row r of B·k continues input row floor(r / k) < B, as rep holds
      const lastRow = Int32Array.from({ length: B * k }, (_, r) => Math.floor(r / k) * P + lens[Math.floor(r / k)]! - 1);
      for (const c of gen.carries) {
        this.carries.set(c.scan, await ex.gatherRows(env.get(c.scan), c.stateSize, lastRow));
      }
      // the whole prompt's keys and values (padded positions stay masked: k < the row's length or k ≥ P0)
      for (const c of plan.caches) this.caches.set(c.cache, await ex.gatherRows(env.get(c.next), P * c.width, rep));
      const dist = await ex.gatherRows(env.get(plan.output.buf), gen.vocab, lastRow);
      made.push(dist);
      this.rows = B * k;
      this.dims = { ...this.dims, B: this.rows, T: 1, P, K: P + 1, P0: P };
      this.positions = Float32Array.from(rep, (r) => lens[r]!);
      this.keyLengths = ex.upload(Float32Array.from(rep, (r) => lens[r]!));
      this.held.push(this.keyLengths);
      return { logp: this.readout(await ex.read(dist, this.rows * gen.vocab)) };
    } finally {
      for (const v of made) ex.release(v);
    }
  }

  async step(tokens: Int32Array, parents: Int32Array | undefined, wantAttention: boolean): Promise<StepOut> {
    const { plan, ex } = this.m;
    const gen = plan.gen!;
    const N = this.rows;
    if (parents) {
      for (const [scan, v] of this.carries) {
        const c = gen.carries.find((x) => x.scan === scan)!;
        const moved = await ex.gatherRows(v, c.stateSize, parents);
        ex.release(v);
        this.carries.set(scan, moved);
      }
      for (const [name, v] of this.caches) {
        const c = plan.caches.find((x) => x.cache === name)!;
        const moved = await ex.gatherRows(v, this.dims.P * c.width, parents);
        ex.release(v);
        this.caches.set(name, moved);
      }
    }
    const env: Env = new Map(this.base);
    const made: unknown[] = [];
    const keep = new Map<string, unknown>();
    const inp = plan.inputs[gen.input]!; // gen.input indexes the plan's inputs
    const ids = ex.upload(Float32Array.from(tokens));
    const lens = ex.upload(new Float32Array(N).fill(1));
    made.push(ids, lens);
    env.set(inp.data, ids);
    env.set(inp.lengths, lens);
    if (gen.maxPositions !== undefined) {
      const last = this.positions.reduce((m, p) => Math.max(m, p), 0);
      if (last >= gen.maxPositions) {
        throw new NncError(`generate() reached position ${last}, but the model's learned positions cover ${gen.maxPositions} (positional learned, max_len = ${gen.maxPositions}): use a shorter prompt or maxLen`);
      }
    }
    if (inp.offsets) {
      const off = ex.upload(this.positions);
      made.push(off);
      env.set(inp.offsets, off);
    }
    if (inp.keyLengths) env.set(inp.keyLengths, this.keyLengths);
    for (const c of plan.caches) {
      let v = this.caches.get(c.cache);
      if (v === undefined) {
        v = ex.zeros(1); // P = 0: never read
        made.push(v);
      }
      env.set(c.cache, v);
    }
    try {
      await this.m.exec(plan.decode, env, this.dims, made, this.carries, keep);
      for (const c of gen.carries) {
        const next = env.get(c.scan);
        const old = this.carries.get(c.scan);
        if (old !== undefined) ex.release(old);
        this.carries.set(c.scan, next);
        made.splice(made.indexOf(next), 1);
      }
      for (const c of plan.caches) {
        const next = env.get(c.next);
        const old = this.caches.get(c.cache);
        if (old !== undefined) ex.release(old);
        this.caches.set(c.cache, next);
        made.splice(made.indexOf(next), 1);
      }
      for (let r = 0; r < N; r++) this.positions[r]! += 1; // positions has N = this.rows entries
      this.dims = { ...this.dims, P: this.dims.P + 1, K: this.dims.P + 2 };
      const logp = this.readout(await ex.read(env.get(plan.output.buf), N * gen.vocab));
      let attention: Float32Array | undefined;
      if (wantAttention && gen.attention) {
        const a = 'buf' in gen.attention ? env.get(gen.attention.buf) : keep.get(`${gen.attention.scan}.${gen.attention.name}`);
        attention = await ex.read(a, N * this.dims.S);
      }
      return { logp, attention, srcLen: this.dims.S };
    } finally {
      // outer buffers are in `made`; a scan's last-step exports (its attention weights) only in `keep`
      for (const v of made) ex.release(v);
      for (const v of keep.values()) ex.release(v);
    }
  }

  /** The output as log-probabilities. */
  private readout(x: Float32Array): Float32Array {
    const { vocab, readout } = this.m.plan.gen!;
    if (readout === 'logprob') return x;
    const out = new Float32Array(x.length);
    // x holds whole rows of vocab values: every o + v below is < x.length
    for (let r = 0; r < x.length / vocab; r++) {
      const o = r * vocab;
      if (readout === 'prob') {
        for (let v = 0; v < vocab; v++) out[o + v] = Math.log(x[o + v]!);
        continue;
      }
      let m = -Infinity;
      for (let v = 0; v < vocab; v++) m = Math.max(m, x[o + v]!);
      let s = 0;
      for (let v = 0; v < vocab; v++) s += Math.exp(x[o + v]! - m);
      const lse = m + Math.log(s);
      for (let v = 0; v < vocab; v++) out[o + v] = x[o + v]! - lse;
    }
    return out;
  }
}

/** A spec's `decode` statement (in its manifest) as generate() defaults. */
export function specDefaults(manifest: ModelManifest): Record<string, unknown> {
  const d = manifest.decode;
  if (!d) return {};
  const strategy = d['sample'] ? 'sample' : d['beam'] !== undefined ? 'beam' : 'greedy';
  return { strategy, beam: d['beam'], maxLen: d['max_len'], bos: d['bos'], eos: d['eos'], temperature: d['temperature'], topK: d['top_k'] };
}

/**
 * Called by generated modules: a typed model on the requested backend (in a worker with
 * `options.worker`). `from` is the generated module's URL (its import.meta.url): a worker loads the
 * module from there, and gpu.js is also looked for from there.
 */
export async function createNncModel<I, O, G = I>(manifest: ModelManifest, kernels: Readonly<Record<string, KernelDef>>, plan: Plan, options: CreateOptions = {}, from?: string): Promise<NncModel<I, O, G>> {
  if (options?.worker) return (await createWorkerModel(manifest, options, from)) as NncModel<I, O, G>;
  const ex = await createExecutor(options, from);
  return new Model(manifest, kernels, plan, ex, options?.allowNonFinite === true) as unknown as NncModel<I, O, G>;
}

export type { InputTensor, Tensor };
