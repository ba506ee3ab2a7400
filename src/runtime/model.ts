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
import type { GenPlan, Instr, Plan, RunInstr, ScanInstr, Size, Slot, TrainPlan } from './plan.ts';
import type { BackendName, CreateOptions, Executor, InputInfo, InputTensor, KernelDef, ModelManifest, SpecSource, Tensor } from './types.ts';
import { NncError, OutOfMemory } from './errors.ts';
import { createExecutor } from './backends.ts';
import { isNode } from './host.ts';
import { createWorkerModel } from './worker.ts';
import { isWeightStream, readWeightStream, weightMap, type LoadOptions, type WeightSource, type WeightStream } from './weights.ts';
import { prepareInputs, type PreparedInput } from './inputs.ts';
import { encodeSafetensors } from './safetensors.ts';
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
  /**
   * The gradient of Σ output ⊙ cotangent (`cotangents` keyed by the output's name, its shape the
   * output's) with respect to every weight (keyed by the manifest's names, each in its own layout) and
   * every float input, on `inputs` as forward takes them; dropout is the identity (docs/training.md).
   */
  vjp(inputs: I, cotangents: Readonly<Record<string, { data: Float32Array | readonly number[]; shape: readonly number[] }>>): Promise<VjpResult>;
  /** The weights as safetensors bytes (F32), under the manifest's (PyTorch's state_dict) names. */
  saveWeights(): Uint8Array;
  /** Frees the weights and kernels; the model cannot be used afterwards. */
  dispose(): void;
  /** Language models: a decode session that starts each of `batch` rows from bos (generate's `lm` option, shallow fusion). */
  lmSession(batch: number): DecodeSession & { close(): void };
}

/** What vjp returns: per weight (manifest names) and per float input, the gradient. */
export interface VjpResult {
  readonly weights: Record<string, Float32Array>;
  readonly inputs?: Record<string, Tensor>;
}

/** A training forward's result, held until its backward runs (or it is released). */
export interface TrainingRun {
  /** The model's output, read back. */
  readonly output: Tensor;
  /** @internal what the backward reads */
  readonly env: Env;
  /** @internal */
  readonly dims: Dims;
  /** @internal */
  readonly inputs: unknown;
  /** @internal the call the user made (`vjp`, `trainer.step`), named by errors */
  readonly method: string;
}

/** A training step's dropout masks, by layer (each its layer's shape, flattened): 0 where dropped, 1 / (1 − p) where kept. */
export type DropoutMasks = (layer: number, p: number, size: number) => Float32Array;

/** The model's internals nnc/train drives (not part of the documented API). */
export interface Trainable {
  /** Runs the training forward (dropout from `masks`, the identity without them); errors name `method`, the call the user made (default `vjp`). */
  trainForward(inputs: unknown, masks?: DropoutMasks, method?: string): Promise<TrainingRun>;
  /** Runs the backward of a training forward with the output's cotangent; releases the run. */
  backward(run: TrainingRun, cotangent: Float32Array): Promise<VjpResult>;
  /** Releases a training forward's buffers without running its backward. */
  releaseTraining(run: TrainingRun): void;
  /** The weights as float32 arrays (copies), in the manifest's order; errors name `method` (default `saveWeights`). */
  readWeights(method?: string): Promise<Float32Array[]>;
  /** Replaces the weights' values (the manifest's order) and repacks the GEMM weight blocks. */
  writeWeights(values: readonly Float32Array[]): void;
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
  const shape = i.op === 'run' ? ` [${i.size.map((d) => (typeof d === 'number' ? d : `${d} = ${dimValue(d, dims)}`)).join(', ')}]` : ' (a recurrence)';
  return new NncError(`${model}: '${label}'${shape}: ${e.message}`);
}

/** A symbolic dim's value: B, T, S, P, K, P0, or `T/k` (⌈T / k⌉: recomputation's k-step segments). */
function dimValue(d: string, dims: Dims): number {
  const cut = d.indexOf('/');
  return cut < 0 ? dims[d as keyof Dims] : Math.ceil(dims[d.slice(0, cut) as keyof Dims] / Number(d.slice(cut + 1)));
}

function sizeOf(s: Size, dims: Dims): number {
  let n = 1;
  for (const d of s) n *= typeof d === 'number' ? d : dimValue(d, dims);
  return n;
}

/** A mask over slots. */
function mask(slots: number, on: Iterable<Slot>): Uint8Array {
  const m = new Uint8Array(slots);
  for (const s of on) m[s] = 1;
  return m;
}

/** A plan's kernels and packed weight blocks: what exec runs an instruction with. */
interface Prog {
  readonly kernels: readonly KernelDef[];
  packSets: (readonly unknown[])[];
}

/** A training plan, once made ready: its base env (weights and tables) and packed blocks. */
interface TrainReady {
  readonly fwd: Prog;
  readonly bwd: Prog;
  readonly fwdBase: Env;
  readonly bwdBase: Env;
  /** Handles this made (tables, packed blocks), released with the weights. */
  readonly owned: unknown[];
}

class Model {
  private ex: Executor | undefined;
  /** The weights' (and tables') handles in their slots; other slots empty. */
  private w: Env | undefined;
  /** The plan's packed weight blocks (host executors). */
  private packed: unknown[] = [];
  readonly backend: BackendName;
  readonly device: string;
  readonly manifest: ModelManifest;
  private readonly plan: Plan;
  /** What forward keeps (its output), and what a decoding step keeps (GenPlan.keep). */
  private readonly forwardKeep: Uint8Array;
  readonly stepKeep: Uint8Array;

  /** createModel's allowNonFinite: NaN and ±Infinity in vectors inputs are accepted. */
  private readonly allowNonFinite: boolean;
  private readonly main: Prog;
  private readonly train: TrainPlan | undefined;
  private trainReady: TrainReady | undefined;

  constructor(manifest: ModelManifest, kernels: readonly KernelDef[], plan: Plan, ex: Executor, allowNonFinite = false, train?: TrainPlan) {
    this.allowNonFinite = allowNonFinite;
    this.train = train;
    this.main = { kernels, packSets: [] };
    this.manifest = manifest;
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
    for (const t of this.plan.tables ?? []) w[t.slot] = ex.upload(sinFreqs(t.dim));
    // host executors pack the weight blocks their GEMMs read now, once, not on a first call
    if (ex.prepack && this.plan.packs) {
      const prepack = ex.prepack.bind(ex);
      this.packed = this.plan.packs.map(([slot, off, n, k, sn, sk]) => prepack(w[slot], off, n, k, sn, sk));
      this.main.packSets = (this.plan.packSets ?? []).map((set) => set.map((i) => this.packed[i]));
    }
    this.w = w;
  }

  private releaseWeights(): void {
    this.releaseTrainReady();
    if (this.w && this.ex) {
      for (const v of this.w) if (v !== undefined) this.ex.release(v);
      for (const p of this.packed) this.ex.release(p);
    }
    this.w = undefined;
    this.packed = [];
    this.main.packSets = [];
  }

  private releaseTrainReady(): void {
    if (this.trainReady && this.ex) for (const h of this.trainReady.owned) this.ex.release(h);
    this.trainReady = undefined;
  }

  dispose(): void {
    this.releaseWeights();
    this.ex?.dispose();
    this.ex = undefined;
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
  prepare(inputs: unknown, which: readonly number[], env: Env, plan: Plan = this.plan): { dims: Dims; prepared: PreparedInput[] } {
    const ex = this.live();
    // `which` holds indices of the plan's inputs, which are the manifest's inputs in order
    // every model has an input and `which` names at least one
    const prepared = prepareInputs(inputs, which.map((i) => this.manifest.inputs[i]!), this.allowNonFinite);
    const B = prepared[0]!.B;
    const dims: Dims = { B, T: 1, S: 1, P: 0, K: 1, P0: 1 };
    which.forEach((i, k) => {
      const pi = plan.inputs[i]!;
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
   * Instructions that compute only reported attention weights run only with `weights`.
   */
  async exec(instrs: readonly Instr[], env: Env, dims: Dims, keep: Uint8Array, carried?: readonly unknown[], prog: Prog = this.main, weights = false): Promise<void> {
    const ex = this.live();
    const scal: Record<string, number> = { B: dims.B, T: dims.T, S: dims.S, P: dims.P, K: dims.K, P0: dims.P0, t: 0, tp: 0 };
    for (const i of instrs) {
      if (i.op === 'scan' || !i.weights || weights) try {
        if (i.op === 'run') env[i.out] = await ex.run(prog.kernels[i.kernel]!, gather(env, i.args, new Array(i.args.length)), scal, sizeOf(i.size, dims), packsOf(prog, i.packs));
        else await this.scan(i, env, dims, scal, carried?.[i.out], prog);
      } catch (e) {
        throw e instanceof OutOfMemory ? tooLarge(e, i, prog.kernels[i.op === 'run' ? i.kernel : i.step.kernel]!.label, dims, this.manifest.model) : e;
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

  private async scan(i: ScanInstr, env: Env, dims: Dims, scal: Record<string, number>, carried: unknown, prog: Prog): Promise<void> {
    const ex = this.live();
    const L = dimValue(i.dim, dims);
    const S = i.stateSize;
    const first = i.reverse ? L - 1 : 0;
    const init = carried ?? (i.init !== undefined ? env[i.init] : undefined);
    // the state before the first step sits in that step's own slot (zeros without an initial state)
    let hist = init === undefined ? ex.zeros(sizeOf(i.size, dims)) : await ex.placeRows(init, S, dims.B, L, first);
    // per body instruction, made once: its kernel, argument array (refilled each step), size, packs
    const body = i.body.map((b: RunInstr) => ({
      b, k: prog.kernels[b.kernel]!, args: new Array<unknown>(b.args.length), size: sizeOf(b.size, dims), packs: packsOf(prog, b.packs),
      exported: i.exports?.includes(b.out) ?? false,
    }));
    const stepK = prog.kernels[i.step.kernel]!;
    const stepArgs = new Array<unknown>(i.step.args.length);
    const stepPacks = packsOf(prog, i.step.packs);
    // body outputs kept at every step (training graphs)
    const stacks = i.stacks ?? [];
    const widths = stacks.map((x) => sizeOf(x.width, dims));
    stacks.forEach((x, j) => (env[x.to] = ex.zeros(dims.B * L * widths[j]!)));
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
      for (let j = 0; j < stacks.length; j++) {
        const x = stacks[j]!;
        const r = ex.stackRows(env[x.to], env[x.from], env[i.lengths], widths[j]!, dims.B, L, t);
        env[x.to] = now ? r : await r;
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
      const shape = this.plan.output.shape.map((d) => (typeof d === 'number' ? d : dimValue(d, dims)));
      const data = await ex.read(env[this.plan.output.slot], sizeOf(this.plan.output.shape, dims));
      return { [this.manifest.output.name]: { data, shape } };
    } finally {
      this.releaseRun(env, w);
    }
  }

  // ── training (vjp, nnc/train): built on first use, so forward and generate pay nothing ──

  /** The training plans' base envs (weights, tables) and packed blocks, made on first use after loadWeights. */
  private training(method: string): { def: TrainPlan; ready: TrainReady } {
    const ex = this.live();
    const w = this.weights(method);
    const def = this.train;
    if (!def) throw new NncError(`${method}(): this ${this.manifest.model} module was compiled without its training program (nnc compile --no-train): compile it without --no-train`);
    if (!this.trainReady) {
      const owned: unknown[] = [];
      const base = (plan: Plan): { env: Env; prog: Prog } => {
        const env: Env = new Array(plan.slots);
        for (let s = 0; s < plan.weights; s++) env[s] = w[s];
        for (const t of plan.tables ?? []) owned.push((env[t.slot] = ex.upload(sinFreqs(t.dim))));
        const prepack = ex.prepack?.bind(ex);
        const packed = prepack ? (plan.packs ?? []).map(([slot, off, n, k, sn, sk]) => prepack(env[slot], off, n, k, sn, sk)) : [];
        owned.push(...packed);
        return { env, prog: { kernels: this.main.kernels, packSets: (plan.packSets ?? []).map((set) => set.map((i) => packed[i])) } };
      };
      const f = base(def.forward);
      const b = base(def.backward);
      this.trainReady = { fwd: f.prog, bwd: b.prog, fwdBase: f.env, bwdBase: b.env, owned };
    }
    return { def, ready: this.trainReady };
  }

  async trainForward(inputs: unknown, masks?: DropoutMasks, method = 'vjp'): Promise<TrainingRun> {
    const ex = this.live();
    const { def, ready } = this.training(method);
    const plan = def.forward;
    const env = ready.fwdBase.slice();
    try {
      const { dims } = this.prepare(inputs, this.manifest.inputs.map((_, k) => k), env, plan);
      for (const f of plan.feeds ?? []) {
        if (f.kind !== 'dropout') continue;
        const n = sizeOf(f.shape, dims);
        env[f.slot] = ex.upload(masks ? masks(f.layer, f.p, n) : new Float32Array(n).fill(1));
      }
      await this.exec(plan.decode, env, dims, mask(plan.slots, (plan.outputs ?? []).map((o) => o.slot)), undefined, ready.fwd);
      const shape = plan.output.shape.map((d) => (typeof d === 'number' ? d : dimValue(d, dims)));
      const data = await ex.read(env[plan.output.slot], sizeOf(plan.output.shape, dims));
      return { output: { data, shape }, env, dims, inputs, method };
    } catch (e) {
      this.releaseRun(env, ready.fwdBase);
      throw e;
    }
  }

  releaseTraining(run: TrainingRun): void {
    if (this.trainReady) this.releaseRun(run.env, this.trainReady.fwdBase);
  }

  async backward(run: TrainingRun, cotangent: Float32Array): Promise<VjpResult> {
    const ex = this.live();
    const { def, ready } = this.training(run.method);
    const plan = def.backward;
    const fwd = def.forward;
    const env = ready.bwdBase.slice();
    try {
      const { dims } = this.prepare(run.inputs, this.manifest.inputs.map((_, k) => k), env, plan);
      const from = new Map((fwd.outputs ?? []).map((o) => [o.name, o.slot]));
      for (const f of plan.feeds ?? []) {
        if (f.kind === 'saved') env[f.slot] = run.env[from.get(f.name)!];
        else if (f.kind === 'cotangent') env[f.slot] = ex.upload(cotangent);
        else throw new Error(`internal: a backward plan reads dropout mask ${f.layer} directly`);
      }
      // the saved values are the backward's now
      for (const f of plan.feeds ?? []) if (f.kind === 'saved') run.env[from.get(f.name)!] = undefined;
      this.releaseRun(run.env, ready.fwdBase);
      await this.exec(plan.decode, env, dims, mask(plan.slots, (plan.outputs ?? []).map((o) => o.slot)), undefined, ready.bwd);
      const weights: Record<string, Float32Array> = {};
      const inputs: Record<string, Tensor> = {};
      for (const o of plan.outputs ?? []) {
        const shape = o.shape.map((d) => (typeof d === 'number' ? d : dimValue(d, dims)));
        const data = await ex.read(env[o.slot], sizeOf(o.shape, dims));
        if (o.name.startsWith('input:')) inputs[o.name.slice('input:'.length)] = { data, shape };
        else weights[o.name] = data;
      }
      return Object.keys(inputs).length ? { weights, inputs } : { weights };
    } finally {
      this.releaseRun(run.env, ready.fwdBase);
      this.releaseRun(env, ready.bwdBase);
    }
  }

  async vjp(inputs: unknown, cotangents: unknown): Promise<VjpResult> {
    this.training('vjp');
    const name = this.manifest.output.name;
    if (typeof cotangents !== 'object' || cotangents === null) throw new NncError(`vjp(): cotangents must be an object keyed by the output's name, { ${name}: { data, shape } }`);
    for (const k of Object.keys(cotangents)) {
      if (k !== name) throw new NncError(`vjp(): cotangent for '${k}', but ${this.manifest.model}'s output is '${name}': pass { ${name}: { data, shape } }`);
    }
    const c = (cotangents as Record<string, unknown>)[name] as { data?: unknown; shape?: unknown } | undefined;
    if (!c || typeof c !== 'object' || !Array.isArray(c.shape) || !(c.data instanceof Float32Array || Array.isArray(c.data))) {
      throw new NncError(`vjp(): no cotangent for output '${name}': pass { ${name}: { data: Float32Array, shape } } shaped as forward's output`);
    }
    const run = await this.trainForward(inputs);
    let handed = false;
    try {
      const want = run.output.shape;
      const shape = c.shape as unknown[];
      if (shape.length !== want.length || shape.some((d, i) => d !== want[i])) {
        throw new NncError(`vjp(): the cotangent of '${name}' has shape [${shape.join(', ')}], but the output has shape [${want.join(', ')}] for these inputs: pass one value per output value`);
      }
      const data = c.data as Float32Array | number[];
      if (data.length !== run.output.data.length) throw new NncError(`vjp(): the cotangent of '${name}' holds ${data.length} values, but its shape [${shape.join(', ')}] needs ${run.output.data.length}`);
      handed = true;
      return await this.backward(run, Float32Array.from(data));
    } finally {
      if (!handed) this.releaseTraining(run);
    }
  }

  async readWeights(method = 'saveWeights'): Promise<Float32Array[]> {
    const ex = this.live();
    const w = this.weights(method);
    return Promise.all(this.manifest.weights.map((info, s) => ex.read(w[s], info.shape.reduce((a, d) => a * d, 1))));
  }

  writeWeights(values: readonly Float32Array[]): void {
    const m = new Map(this.manifest.weights.map((info, s) => [info.name, values[s]!]));
    this.loadWeights(Object.fromEntries(m));
  }

  saveWeights(): Uint8Array {
    const ex = this.live();
    const w = this.weights('saveWeights');
    if (!ex.readNow) throw new NncError(`saveWeights() is synchronous and the ${this.backend} backend reads its buffers asynchronously: use backend 'wasm' or 'cpu'`);
    return encodeSafetensors(new Map(this.manifest.weights.map((info, s) => [info.name, { shape: info.shape, data: ex.readNow!(w[s], info.shape.reduce((a, d) => a * d, 1)) }])));
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

/** Sinusoid frequencies 10000^(-2i/dim) per column (the plan's `sin_freqs` tables). */
function sinFreqs(dim: number): Float32Array {
  return Float32Array.from({ length: dim }, (_, j) => Math.pow(10000, -(j - (j % 2)) / dim));
}

function packsOf(prog: Prog, set: number | undefined): readonly unknown[] | undefined {
  return set === undefined ? undefined : prog.packSets[set];
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
      await this.model.exec(plan.decode, env, this.dims, this.model.stepKeep, this.carried, undefined, wantAttention);
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
export async function createNncModel<I, O, G = I>(manifest: ModelManifest, kernels: readonly KernelDef[], plan: Plan, given: CreateOptions = {}, from?: string, spec?: SpecSource, train?: TrainPlan): Promise<NncModel<I, O, G>> {
  const options = checkOptions('createModel', CREATE_OPTIONS, given);
  const ort = options.backend === 'onnxruntime' || options.backend === 'onnxruntime-web';
  if (options.worker && ort) {
    const off = isNode && options.backend === 'onnxruntime' ? 'ONNX Runtime already runs the graphs off the calling thread' : "to run onnxruntime-web's graphs off the page's thread, set its ort.env.wasm.proxy = true";
    throw new NncError(`worker is not for backend '${options.backend}': ${off} (leave worker out)`);
  }
  if (options.worker) return (await createWorkerModel(manifest, options, from)) as NncModel<I, O, G>;
  if (ort) return (await import('./ort.ts')).createOrtModel(manifest, plan, spec, options, from) as Promise<NncModel<I, O, G>>;
  const ex = await createExecutor(options, from);
  return new Model(manifest, kernels, plan, ex, options.allowNonFinite === true, train) as unknown as NncModel<I, O, G>;
}

export type { InputInfo, InputTensor, Tensor };
