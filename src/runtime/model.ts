/**
 * The model object every generated module returns: it runs a compiled Plan (plan.ts) on an
 * executor. `forward` runs the whole plan; `generate` / `stream` run the encoder part once and
 * then the decoder part one token at a time (decode.ts drives the loop: greedy, beam, sampling),
 * keeping the recurrent state on the device between steps and reading back one distribution per
 * step.
 *
 * The interpreter keeps one array of buffer handles per run, indexed by the plan's slots (the
 * weights' handles fill the first slots), and releases each buffer at the point the plan says is
 * its last use — unless the run keeps it: forward keeps its output; a decoding step keeps what the
 * plan's GenPlan.keep names, and the session then takes (carried states, caches), reads (output,
 * attention) or owns (captures, key lengths) exactly those slots.
 */
import type { GenPlan, Instr, Plan, RunInstr, ScanInstr, Size, Slot } from './plan.ts';
import type { BackendName, CreateOptions, Executor, InputInfo, InputTensor, KernelDef, ModelManifest, SpecSource, Tensor } from './types.ts';
import { NncError, OutOfMemory } from './errors.ts';
import { createExecutor } from './backends.ts';
import { createWorkerModel } from './worker.ts';
import { isWeightStream, readWeightStream, weightMap, type LoadOptions, type WeightSource, type WeightStream } from './weights.ts';
import { prepareInputs, type PreparedInput } from './inputs.ts';
import { decode, decodeStream, logProbs, type DecodeSession, type StepOut } from './decode.ts';
import { CREATE_OPTIONS, checkOptions, type GenerateOptions } from './options.ts';
import type { GenerateResult, StepEvent } from './decode.ts';

export type { ModelManifest } from './types.ts';

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

/**
 * A model that cannot generate (its output is no next-token distribution, or its spec has no way
 * to feed one back): the generated module's type leaves `generate` and `stream` off, so calling
 * them is a compile-time error.
 */
export type ForwardModel<I, O> = Omit<NncModel<I, O>, 'generate' | 'stream'>;

/** Buffer handles by slot. */
type Env = unknown[];

interface Dims {
  B: number;
  T: number;
  S: number;
  /** Positions in the key/value caches (0 in forward), keys K = P + T, and where the caches' generated part starts (P0). */
  P: number;
  K: number;
  P0: number;
}

/** An allocation that failed, as the tensor the plan was computing: its kernel's label, and its shape with the call's dims. */
function tooLarge(e: OutOfMemory, i: Instr, label: string, dims: Dims, model: string): NncError {
  const shape = i.op === 'run' ? ` [${i.size.map((d) => (typeof d === 'number' ? d : `${d} = ${dims[d as keyof Dims]}`)).join(', ')}]` : ' (a recurrence)';
  return new NncError(`${model}: '${label}'${shape}: ${e.message}`);
}

function sizeOf(s: Size, dims: Dims): number {
  let n = 1;
  for (const d of s) n *= typeof d === 'number' ? d : dims[d as keyof Dims];
  return n;
}

/** A mask over slots. */
function mask(slots: number, on: Iterable<Slot>): Uint8Array {
  const m = new Uint8Array(slots);
  for (const s of on) m[s] = 1;
  return m;
}

class Model {
  private ex: Executor | undefined;
  /** The weights' (and tables') handles in their slots; other slots empty. */
  private w: Env | undefined;
  /** Per pack set of the plan: the packed weight blocks (host executors). */
  private packSets: (readonly unknown[])[] = [];
  private packed: unknown[] = [];
  readonly backend: BackendName;
  readonly device: string;
  readonly manifest: ModelManifest;
  private readonly kernels: readonly KernelDef[];
  private readonly plan: Plan;
  /** What forward keeps (its output), and what a decoding step keeps (GenPlan.keep). */
  private readonly forwardKeep: Uint8Array;
  readonly stepKeep: Uint8Array;

  /** createModel's allowNonFinite: NaN and ±Infinity in vectors inputs are accepted. */
  private readonly allowNonFinite: boolean;

  constructor(manifest: ModelManifest, kernels: readonly KernelDef[], plan: Plan, ex: Executor, allowNonFinite = false) {
    this.allowNonFinite = allowNonFinite;
    this.manifest = manifest;
    this.kernels = kernels;
    this.plan = plan;
    this.ex = ex;
    this.backend = ex.backend;
    this.device = ex.device;
    this.forwardKeep = mask(plan.slots, [plan.output.slot]);
    this.stepKeep = mask(plan.slots, plan.gen?.keep ?? []);
  }

  private live(): Executor {
    if (!this.ex) throw new NncError(`this ${this.manifest.model} model was disposed: create a new one with createModel()`);
    return this.ex;
  }

  private weights(method = 'forward'): Env {
    this.live();
    if (!this.w) throw new NncError(`${method}() before loadWeights(): load the ${this.manifest.model} weights first`);
    return this.w;
  }

  loadWeights(src: WeightSource | WeightStream, options?: LoadOptions): void | Promise<void> {
    const ex = this.live();
    if (isWeightStream(src)) return readWeightStream(src, options).then((bytes) => this.loadWeights(bytes, options));
    const m = weightMap(src, this.manifest.weights, options);
    this.releaseWeights();
    const w: Env = new Array(this.plan.slots);
    this.manifest.weights.forEach((info, slot) => (w[slot] = ex.upload(m.get(info.name)!)));
    for (const t of this.plan.tables ?? []) {
      const f = Float32Array.from({ length: t.dim }, (_, j) => Math.pow(10000, -(j - (j % 2)) / t.dim));
      w[t.slot] = ex.upload(f);
    }
    // host executors pack the weight blocks their GEMMs read now, once, not on a first call
    if (ex.prepack && this.plan.packs) {
      const prepack = ex.prepack.bind(ex);
      this.packed = this.plan.packs.map(([slot, row, n, col, k, ld]) => prepack(w[slot], row, n, col, k, ld));
      this.packSets = (this.plan.packSets ?? []).map((set) => set.map((i) => this.packed[i]));
    }
    this.w = w;
  }

  private releaseWeights(): void {
    if (this.w && this.ex) {
      for (const v of this.w) if (v !== undefined) this.ex.release(v);
      for (const p of this.packed) this.ex.release(p);
    }
    this.w = undefined;
    this.packed = [];
    this.packSets = [];
  }

  dispose(): void {
    this.releaseWeights();
    this.ex?.dispose();
    this.ex = undefined;
  }

  private packsOf(set: number | undefined): readonly unknown[] | undefined {
    return set === undefined ? undefined : this.packSets[set];
  }

  /** Releases every buffer of a run's env that is not in `base` (what the run made and did not hand over). */
  releaseRun(env: Env, base: Env): void {
    const ex = this.live();
    for (let s = 0; s < env.length; s++) {
      const v = env[s];
      if (v !== undefined && v !== base[s]) ex.release(v);
      env[s] = undefined;
    }
  }

  /** Validates and uploads inputs `which` (indices of the plan's inputs) into `env`; returns the dims. */
  prepare(inputs: unknown, which: readonly number[], env: Env): { dims: Dims; prepared: PreparedInput[] } {
    const ex = this.live();
    // `which` holds indices of the plan's inputs, which are the manifest's inputs in order
    // every model has an input and `which` names at least one
    const prepared = prepareInputs(inputs, which.map((i) => this.manifest.inputs[i]!), this.allowNonFinite);
    const B = prepared[0]!.B;
    const dims: Dims = { B, T: 1, S: 1, P: 0, K: 1, P0: 1 };
    which.forEach((i, k) => {
      const pi = this.plan.inputs[i]!;
      const p = prepared[k]!;
      dims[pi.dim] = p.T;
      if (pi.data !== undefined) env[pi.data] = ex.upload(p.data);
      if (pi.lengths !== undefined) env[pi.lengths] = ex.upload(p.lengths);
      // positions start at 0, causal self-attention's keys are the input's own tokens
      if (pi.offsets !== undefined) env[pi.offsets] = ex.zeros(B);
      if (pi.keyLengths !== undefined) env[pi.keyLengths] = ex.upload(p.lengths);
    });
    dims.K = dims.T;
    dims.P0 = dims.T;
    return { dims, prepared };
  }

  /** Empty key/value caches (never read: no key position is below P = 0). */
  emptyCaches(env: Env): void {
    const ex = this.live();
    for (const c of this.plan.caches) env[c.cache] = ex.zeros(1);
  }

  /**
   * Runs instructions on `env`, releasing each buffer after its last use unless `keep` marks its
   * slot. `carried[slot]`, when set, is a recurrence's state from the previous decoding step.
   */
  async exec(instrs: readonly Instr[], env: Env, dims: Dims, keep: Uint8Array, carried?: readonly unknown[]): Promise<void> {
    const ex = this.live();
    const scal: Record<string, number> = { B: dims.B, T: dims.T, S: dims.S, P: dims.P, K: dims.K, P0: dims.P0, t: 0, tp: 0 };
    for (const i of instrs) {
      try {
        if (i.op === 'run') env[i.out] = await ex.run(this.kernels[i.kernel]!, gather(env, i.args, new Array(i.args.length)), scal, sizeOf(i.size, dims), this.packsOf(i.packs));
        else await this.scan(i, env, dims, scal, carried?.[i.out]);
      } catch (e) {
        throw e instanceof OutOfMemory ? tooLarge(e, i, this.kernels[i.op === 'run' ? i.kernel : i.step.kernel]!.label, dims, this.manifest.model) : e;
      }
      if (i.free) {
        for (const s of i.free) {
          const v = env[s];
          if (keep[s] || v === undefined) continue;
          ex.release(v);
          env[s] = undefined;
        }
      }
    }
  }

  private async scan(i: ScanInstr, env: Env, dims: Dims, scal: Record<string, number>, carried: unknown): Promise<void> {
    const ex = this.live();
    const L = dims[i.dim];
    const S = i.stateSize;
    const first = i.reverse ? L - 1 : 0;
    const init = carried ?? (i.init !== undefined ? env[i.init] : undefined);
    // the state before the first step sits in that step's own slot (zeros without an initial state)
    let hist = init === undefined ? ex.zeros(sizeOf(i.size, dims)) : await ex.placeRows(init, S, dims.B, L, first);
    // per body instruction, made once: its kernel, argument array (refilled each step), size, packs
    const body = i.body.map((b: RunInstr) => ({
      b, k: this.kernels[b.kernel]!, args: new Array<unknown>(b.args.length), size: sizeOf(b.size, dims), packs: this.packsOf(b.packs),
      exported: i.exports?.includes(b.out) ?? false,
    }));
    const stepK = this.kernels[i.step.kernel]!;
    const stepArgs = new Array<unknown>(i.step.args.length);
    const stepPacks = this.packsOf(i.step.packs);
    const size = sizeOf(i.size, dims);
    const now = ex.runNow && ex.stepNow ? ex : undefined;
    for (let s = 0; s < L; s++) {
      const t = i.reverse ? L - 1 - s : s;
      scal['t'] = t;
      scal['tp'] = s === 0 ? t : i.reverse ? t + 1 : t - 1;
      env[i.out] = hist;
      if (now) {
        // a host executor runs a step synchronously: no promise per kernel in the time loop
        for (const x of body) env[x.b.out] = now.runNow!(x.k, gather(env, x.b.args, x.args), scal, x.size, x.packs);
        hist = now.stepNow!(stepK, hist, gather(env, i.step.args, stepArgs), scal, stepPacks);
      } else {
        for (const x of body) env[x.b.out] = await ex.run(x.k, gather(env, x.b.args, x.args), scal, x.size, x.packs);
        hist = await ex.step(stepK, hist, gather(env, i.step.args, stepArgs), scal, size, stepPacks);
      }
      // a step's buffers live for the step; the last step's exports outlive the scan
      const last = s === L - 1;
      for (const x of body) {
        if (last && x.exported) continue;
        ex.release(env[x.b.out]);
        env[x.b.out] = undefined;
      }
    }
    env[i.out] = hist;
  }

  async forward(inputs: unknown): Promise<Record<string, Tensor>> {
    const ex = this.live();
    const w = this.weights();
    const env: Env = w.slice();
    try {
      const { dims } = this.prepare(inputs, this.manifest.inputs.map((_, k) => k), env);
      this.emptyCaches(env);
      await this.exec(this.plan.encode, env, dims, this.forwardKeep);
      await this.exec(this.plan.decode, env, dims, this.forwardKeep);
      const shape = this.plan.output.shape.map((d) => (typeof d === 'number' ? d : dims[d as keyof Dims]));
      const data = await ex.read(env[this.plan.output.slot], sizeOf(this.plan.output.shape, dims));
      return { [this.manifest.output.name]: { data, shape } };
    } finally {
      this.releaseRun(env, w);
    }
  }

  private session(inputs: unknown, method: string, options: GenerateOptions | undefined): Session {
    this.live();
    const gen = this.plan.gen;
    if (!gen) throw new NncError(`${this.manifest.model} cannot generate: ${this.plan.noGen}`);
    this.weights(method);
    if (options && typeof options === 'object' && options.attention === true && gen.attention === undefined) {
      throw new NncError(`generate option 'attention' is true, but ${gen.noAttention}`);
    }
    return new Session(this, gen, inputs);
  }

  async generate(inputs: unknown, options?: GenerateOptions): Promise<GenerateResult> {
    const s = this.session(inputs, 'generate', options);
    return decode(s, options ?? {}, this.manifest.decode).finally(() => s.close());
  }

  async *stream(inputs: unknown, options?: GenerateOptions): AsyncGenerator<StepEvent, GenerateResult> {
    const s = this.session(inputs, 'stream', options);
    try {
      return yield* decodeStream(s, options ?? {}, this.manifest.decode);
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
    const bos = this.manifest.decode?.bos ?? 0;
    const name = this.manifest.inputs[gen.input]!.name;
    return this.session({ [name]: Array.from({ length: batch }, () => [bos]) }, 'generate', undefined);
  }

  // ── what Session uses ──
  /** @internal */
  internals() {
    return { ex: this.live(), w: this.weights(), plan: this.plan };
  }
}

/** Fills `into` with the buffers in `slots` (a filled slot is a compiler guarantee; an empty one is a bug). */
function gather(env: Env, slots: readonly Slot[], into: unknown[]): unknown[] {
  for (let j = 0; j < slots.length; j++) {
    const v = env[slots[j]!];
    if (v === undefined) throw new Error(`internal: slot ${slots[j]} is read before it is computed, or after its release`);
    into[j] = v;
  }
  return into;
}

/**
 * One generate() call: the encoder's results (captures) and the decoder's carried states and
 * caches, on the device. It owns exactly what the plan's GenPlan says: captures and key lengths in
 * `base`, the carried states and caches by their index in GenPlan.carries and Plan.caches.
 */
class Session implements DecodeSession {
  readonly batch: number;
  readonly vocab: number;
  readonly inputVocab: number;
  readonly inputName: string;
  private rows = 0;
  private dims: Dims;
  /** Weights, and (once begun) the captures and key lengths: what every step reads. */
  private readonly base: Env;
  private readonly weights: Env;
  /** The prepared inputs, until begin() consumes them. */
  private pending: Env | undefined;
  /** Per GenPlan.carries entry: its state from the last step [rows, 1, stateSize] (a history of one step). */
  private states: unknown[] = [];
  /** By slot: the carried states, as exec() reads them. */
  private readonly carried: unknown[];
  /** Per Plan.caches entry: its keys or values so far [rows, P, width]. */
  private caches: unknown[] = [];
  private lengthsOfPrompt: Float32Array;
  /** Per row: the position of the next token fed. */
  private positions = new Float32Array(0);
  private readonly model: Model;
  private readonly gen: GenPlan;
  private readonly plan: Plan;
  private readonly ex: Executor;

  constructor(model: Model, gen: GenPlan, inputs: unknown) {
    this.model = model;
    this.gen = gen;
    const { plan, w, ex } = model.internals();
    this.plan = plan;
    this.ex = ex;
    this.weights = w;
    this.base = w.slice();
    this.carried = new Array(plan.slots);
    this.vocab = gen.vocab;
    this.inputVocab = gen.inputVocab;
    this.inputName = plan.inputs[gen.input]!.name;
    // validated now, so that a bad input fails before anything runs
    const pending = w.slice();
    try {
      const { dims, prepared } = model.prepare(inputs, gen.seq2seq ? [0] : [gen.input], pending);
      this.dims = dims;
      this.batch = dims.B;
      this.lengthsOfPrompt = prepared[0]!.lengths; // the one input of `which`
    } catch (e) {
      model.releaseRun(pending, w);
      throw e;
    }
    this.pending = pending;
  }

  close(): void {
    const { ex } = this;
    if (this.pending) this.model.releaseRun(this.pending, this.weights);
    this.pending = undefined;
    this.model.releaseRun(this.base, this.weights);
    for (const v of [...this.states, ...this.caches]) if (v !== undefined) ex.release(v);
    this.states = [];
    this.caches = [];
  }

  async begin(k: number, bos: number, wantAttention: boolean): Promise<StepOut> {
    const { plan, gen, ex } = this;
    const env = this.pending!;
    this.pending = undefined;
    const B = this.batch;
    const rep = Int32Array.from({ length: B * k }, (_, r) => Math.floor(r / k));
    const giKeys = plan.inputs[gen.input]!.keyLengths;
    try {
      if (gen.seq2seq) {
        // the encoder runs once; its results (and the decoder's initial states) are expanded to B·k rows
        await this.model.exec(plan.encode, env, this.dims, this.model.stepKeep);
        for (const c of gen.captures) {
          const width = sizeOf(c.shape.slice(1), this.dims);
          this.base[c.slot] = await ex.gatherRows(env[c.slot], width, rep);
        }
        this.rows = B * k;
        // the decoder starts empty: positions from 0, every cached key valid (P0 = 0)
        this.dims = { ...this.dims, B: this.rows, T: 1, P: 0, K: 1, P0: 0 };
        this.positions = new Float32Array(this.rows);
        if (giKeys !== undefined) this.base[giKeys] = ex.zeros(this.rows);
      } else {
        // language model: consume the prompt, then keep each recurrence's state at the last valid step
        this.model.emptyCaches(env);
        await this.model.exec(plan.decode, env, this.dims, this.model.stepKeep);
        const P = this.dims.T;
        const lens = this.lengthsOfPrompt;
        // lens has B entries; every row r of B·k continues input row floor(r / k) < B, as rep holds
        const lastRow = Int32Array.from({ length: B * k }, (_, r) => Math.floor(r / k) * P + lens[Math.floor(r / k)]! - 1);
        this.states = [];
        for (const c of gen.carries) this.states.push(await ex.gatherRows(env[c.scan], c.stateSize, lastRow));
        // the whole prompt's keys and values (padded positions stay masked: k < the row's length or k ≥ P0)
        this.caches = [];
        for (const c of plan.caches) this.caches.push(await ex.gatherRows(env[c.next], P * c.width, rep));
        const dist = await ex.gatherRows(env[plan.output.slot], gen.vocab, lastRow);
        this.rows = B * k;
        this.dims = { ...this.dims, B: this.rows, T: 1, P, K: P + 1, P0: P };
        this.positions = Float32Array.from(rep, (r) => lens[r]!);
        if (giKeys !== undefined) this.base[giKeys] = ex.upload(Float32Array.from(rep, (r) => lens[r]!));
        try {
          return { logp: logProbs(await ex.read(dist, this.rows * gen.vocab), gen.vocab, gen.readout) };
        } finally {
          ex.release(dist);
        }
      }
    } finally {
      this.model.releaseRun(env, this.weights);
    }
    return this.step(new Int32Array(this.rows).fill(bos), undefined, wantAttention);
  }

  async step(tokens: Int32Array, parents: Int32Array | undefined, wantAttention: boolean): Promise<StepOut> {
    const { plan, gen, ex } = this;
    const N = this.rows;
    if (parents) {
      for (let j = 0; j < this.states.length; j++) {
        const moved = await ex.gatherRows(this.states[j], gen.carries[j]!.stateSize, parents);
        ex.release(this.states[j]);
        this.states[j] = moved;
      }
      for (let j = 0; j < this.caches.length; j++) {
        const moved = await ex.gatherRows(this.caches[j], this.dims.P * plan.caches[j]!.width, parents);
        ex.release(this.caches[j]);
        this.caches[j] = moved;
      }
    }
    const inp = plan.inputs[gen.input]!; // gen.input indexes the plan's inputs
    if (gen.maxPositions !== undefined) {
      const last = this.positions.reduce((m, p) => Math.max(m, p), 0);
      if (last >= gen.maxPositions) {
        throw new NncError(`generate() reached position ${last}, but the model's learned positions cover ${gen.maxPositions} (positional learned, max_len = ${gen.maxPositions}): use a shorter prompt or maxLen`);
      }
    }
    const env = this.base.slice();
    try {
      if (inp.data !== undefined) env[inp.data] = ex.upload(Float32Array.from(tokens));
      if (inp.lengths !== undefined) env[inp.lengths] = ex.upload(new Float32Array(N).fill(1));
      if (inp.offsets !== undefined) env[inp.offsets] = ex.upload(this.positions);
      // P = 0 (the first step of a seq2seq decoder): an empty cache, never read
      plan.caches.forEach((c, j) => (env[c.cache] = this.caches[j] ?? ex.zeros(1)));
      gen.carries.forEach((c, j) => (this.carried[c.scan] = this.states[j]));
      await this.model.exec(plan.decode, env, this.dims, this.model.stepKeep, this.carried);
      // take the carried states and the caches' next values; the old ones (and empty caches) go
      gen.carries.forEach((c, j) => {
        if (this.states[j] !== undefined) ex.release(this.states[j]);
        this.states[j] = env[c.scan];
        env[c.scan] = undefined;
        this.carried[c.scan] = undefined;
      });
      plan.caches.forEach((c, j) => {
        ex.release(env[c.cache]);
        env[c.cache] = undefined;
        this.caches[j] = env[c.next];
        env[c.next] = undefined;
      });
      for (let r = 0; r < N; r++) this.positions[r]! += 1; // positions has N = this.rows entries
      this.dims = { ...this.dims, P: this.dims.P + 1, K: this.dims.P + 2 };
      const logp = logProbs(await ex.read(env[plan.output.slot], N * gen.vocab), gen.vocab, gen.readout);
      let attention: Float32Array | undefined;
      if (wantAttention && gen.attention !== undefined) attention = await ex.read(env[gen.attention], N * this.dims.S);
      return { logp, attention, srcLen: this.dims.S };
    } finally {
      // the session's caches stay the session's if the step failed before taking the new ones
      plan.caches.forEach((c, j) => {
        if (env[c.cache] === this.caches[j]) env[c.cache] = undefined;
      });
      gen.carries.forEach((c) => (this.carried[c.scan] = undefined));
      this.model.releaseRun(env, this.base);
    }
  }
}

/**
 * Called by generated modules: a typed model on the requested backend (in a worker with
 * `options.worker`). `from` is the generated module's URL (its import.meta.url): a worker loads the
 * module from there, and gpu.js is also looked for from there.
 */
export async function createNncModel<I, O, G = I>(manifest: ModelManifest, kernels: readonly KernelDef[], plan: Plan, given: CreateOptions = {}, from?: string, spec?: SpecSource): Promise<NncModel<I, O, G>> {
  const options = checkOptions('createModel', CREATE_OPTIONS, given);
  if (options.worker && options.backend === 'onnxruntime') throw new NncError(`worker is not for backend 'onnxruntime': ONNX Runtime already runs the graphs off the calling thread (leave worker out)`);
  if (options.worker) return (await createWorkerModel(manifest, options, from)) as NncModel<I, O, G>;
  if (options.backend === 'onnxruntime') return (await import('./ort.ts')).createOrtModel(manifest, plan, spec, options, from) as Promise<NncModel<I, O, G>>;
  const ex = await createExecutor(options, from);
  return new Model(manifest, kernels, plan, ex, options.allowNonFinite === true) as unknown as NncModel<I, O, G>;
}

export type { InputInfo, InputTensor, Tensor };
