/**
 * `nnc train` for neural models (docs/training.md): the spec compiled in-process with its training
 * program, JSON Lines data checked in full before the first step (src/train/data.ts), a seeded run of
 * createTrainer over batches of similar lengths, a progress bar on a terminal (one line per epoch
 * otherwise), validation each epoch, early stopping, and checkpoints every epoch and on Ctrl-C from
 * which `--resume` continues exactly.
 *
 * A checkpoint is a directory: weights.safetensors (PyTorch names, what --out holds),
 * optimizer.safetensors (trainer.state()), and state.json (the flags, the epoch and the next batch
 * in it, the step, the data order's generator state, the epoch's running loss, the early-stopping
 * counters, and hashes of the spec and the data). Each file is written to a temporary name and
 * renamed; state.json last, so a checkpoint is whole or the previous one.
 *
 * Exit codes: 0 ok, 1 errors in the spec or the data, 2 bad usage, 130 interrupted (checkpoint written).
 */
import { appendFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import type { ModelIR } from './ir/model.ts';
import { didYouMean } from './runtime/suggest.ts';
import { batchOrder, DataError, inOrder, parseExamples, toBatch, type Example, type Task, type TaskModel } from './train/data.ts';
import { initialWeights } from './train/init.ts';
import { streamOf, Random } from './train/random.ts';
import type { OptimizerOptions, ScheduleOptions, Trainer } from './train/index.ts';

export class TrainUsageError extends Error {}

/** The flags, as parsed and as saved in a checkpoint. */
interface Flags {
  data?: string;
  valid?: string;
  epochs: number;
  batch: number;
  optimizer: 'sgd' | 'adam' | 'adamw';
  lr?: number;
  momentum: number;
  weightDecay?: number;
  clip?: number;
  schedule: 'constant' | 'step' | 'cosine' | 'noam';
  warmup: number;
  stepSize: number;
  gamma: number;
  dModel?: number;
  labelSmoothing: number;
  backend: 'wasm' | 'cpu';
  threads?: number;
  out?: string;
  checkpoint?: string;
  resume?: string;
  init?: string;
  log?: string;
  seed: number;
  patience?: number;
}

type Kind = 'path' | 'count' | 'number' | 'whole' | { readonly choices: readonly string[] };
/** Every flag of neural `nnc train`: its key in Flags and its value's kind. */
const FLAGS: Readonly<Record<string, readonly [keyof Flags, Kind]>> = {
  '--data': ['data', 'path'], '--valid': ['valid', 'path'], '--epochs': ['epochs', 'count'], '--batch': ['batch', 'count'],
  '--optimizer': ['optimizer', { choices: ['sgd', 'adam', 'adamw'] }], '--lr': ['lr', 'number'], '--momentum': ['momentum', 'number'],
  '--weight-decay': ['weightDecay', 'number'], '--clip': ['clip', 'number'],
  '--schedule': ['schedule', { choices: ['constant', 'step', 'cosine', 'noam'] }], '--warmup': ['warmup', 'count'],
  '--step-size': ['stepSize', 'count'], '--gamma': ['gamma', 'number'], '--d-model': ['dModel', 'count'],
  '--label-smoothing': ['labelSmoothing', 'number'], '--backend': ['backend', { choices: ['wasm', 'cpu'] }], '--threads': ['threads', 'count'],
  '--out': ['out', 'path'], '-o': ['out', 'path'], '--checkpoint': ['checkpoint', 'path'], '--resume': ['resume', 'path'],
  '--init': ['init', 'path'], '--log': ['log', 'path'], '--seed': ['seed', 'whole'], '--patience': ['patience', 'count'],
};
/** Flags that may differ when resuming (they do not change the steps taken). */
const FREE_ON_RESUME = new Set<keyof Flags>(['epochs', 'patience', 'backend', 'threads', 'out', 'checkpoint', 'resume', 'log', 'data', 'valid']);

const DEFAULTS: Flags = { epochs: 1, batch: 32, optimizer: 'adam', momentum: 0, schedule: 'constant', warmup: 400, stepSize: 1000, gamma: 0.5, labelSmoothing: 0, backend: 'wasm', seed: 0 };

function parseFlags(args: readonly string[]): { flags: Flags; given: Set<keyof Flags> } {
  const flags: Flags = { ...DEFAULTS };
  const given = new Set<keyof Flags>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const name = eq > 0 ? a.slice(0, eq) : a;
    const spec = FLAGS[name];
    if (name === '--model') {
      if (eq < 0) i++;
      continue;
    }
    if (!spec) {
      if (!a.startsWith('-')) throw new TrainUsageError(`unexpected argument '${a}' for train`);
      const near = didYouMean(name, Object.keys(FLAGS));
      throw new TrainUsageError(`unknown option '${name}' for train${near ? ` (did you mean '${near}'?)` : ''}; the flags are in docs/training.md`);
    }
    const v = eq > 0 ? a.slice(eq + 1) : args[++i];
    if (v === undefined || v === '' || (v.startsWith('-') && !/^-\d/.test(v))) throw new TrainUsageError(`${name} needs a value`);
    const [key, kind] = spec;
    (flags as unknown as Record<string, unknown>)[key] = value(name, v, kind);
    given.add(key);
  }
  if (flags.lr !== undefined && !(flags.lr > 0)) throw new TrainUsageError(`--lr must be > 0, got ${flags.lr}`);
  if (flags.clip !== undefined && !(flags.clip > 0)) throw new TrainUsageError(`--clip must be > 0, got ${flags.clip}`);
  if (!(flags.labelSmoothing >= 0 && flags.labelSmoothing < 1)) throw new TrainUsageError(`--label-smoothing must be in [0, 1), got ${flags.labelSmoothing}`);
  if (flags.momentum < 0 || (flags.weightDecay ?? 0) < 0) throw new TrainUsageError('--momentum and --weight-decay must be ≥ 0');
  if (flags.momentum && flags.optimizer !== 'sgd') throw new TrainUsageError(`--momentum belongs to --optimizer sgd (adam and adamw have betas)`);
  if ((given.has('warmup') || given.has('dModel')) && flags.schedule !== 'noam') throw new TrainUsageError(`--warmup and --d-model belong to --schedule noam`);
  if ((given.has('stepSize') || given.has('gamma')) && flags.schedule !== 'step') throw new TrainUsageError(`--step-size and --gamma belong to --schedule step`);
  if (flags.threads !== undefined && flags.backend !== 'wasm') throw new TrainUsageError(`--threads belongs to --backend wasm`);
  for (const k of ['out', 'init'] as const) if (flags[k] !== undefined && !/\.safetensors$/.test(flags[k])) throw new TrainUsageError(`--${k} names weights, a .safetensors file; got '${flags[k]}'`);
  return { flags, given };
}

function value(flag: string, v: string, kind: Kind): unknown {
  if (kind === 'path') return v;
  if (typeof kind === 'object') {
    if (kind.choices.includes(v)) return v;
    const near = didYouMean(v, kind.choices);
    throw new TrainUsageError(`${flag} must be one of ${kind.choices.join(', ')}; got '${v}'${near ? ` (did you mean '${near}'?)` : ''}`);
  }
  const n = Number(v);
  if (kind === 'number' && Number.isFinite(n)) return n;
  if (kind === 'count' && Number.isInteger(n) && n >= 1) return n;
  if (kind === 'whole' && Number.isInteger(n) && n >= 0 && n < 2 ** 32) return n;
  throw new TrainUsageError(`${flag} must be ${kind === 'number' ? 'a number' : kind === 'count' ? 'a whole number ≥ 1' : 'a whole number in [0, 2^32)'}, got '${v}'`);
}

/** FNV-1a of a text: whether a spec or a data file changed since a checkpoint. */
function hash(text: string): string {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return (h >>> 0).toString(16).padStart(8, '0');
}

interface State {
  readonly nnc: 'train-checkpoint';
  readonly version: 1;
  readonly flags: Flags;
  readonly spec: string;
  readonly data: string;
  /** The epoch under way (0-based) and the next batch of it; `random`: the epoch's data-order generator state at its start. */
  readonly epoch: number;
  readonly batch: number;
  readonly random: number;
  readonly step: number;
  /** The epoch's running loss (token-weighted sum) and tokens. */
  readonly lossSum: number;
  readonly tokens: number;
  readonly best: number | null;
  readonly bad: number;
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new TrainUsageError(`cannot read ${what} '${path}': ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (e as Error).message}`);
  }
}

/** Writes a file through a temporary name and a rename: readers see the old file or the new one. */
function writeAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/** The compiled module of a spec, evaluated in this process (the generated TypeScript, types erased, its `nnc/runtime` this runtime). */
async function compileInProcess(text: string, file: string): Promise<Record<string, unknown>> {
  const { compile } = await import('./driver.ts');
  const r = compile(text, file, 'ts', 2, { train: true });
  if (r.output === undefined) throw new Error(`${file} compiled with diagnostics after lower() passed`);
  const { transpile } = await import('./emit-js.ts');
  const js = transpile(r.output.replaceAll('import.meta.url', 'undefined'), 'model.ts', true);
  const runtime = await import('./runtime/index.ts');
  const module = { exports: {} as Record<string, unknown> };
  const require = (id: string) => {
    if (id === 'nnc/runtime') return runtime;
    throw new Error(`a generated module imported '${id}'`);
  };
  new Function('require', 'module', 'exports', js)(require, module, module.exports);
  return module.exports;
}

/** The model a training run drives: createTrainer's model, with the data module's view of it. */
interface RunModel extends TaskModel {
  loadWeights(w: Record<string, Float32Array> | Uint8Array): void;
  saveWeights(): Uint8Array;
  dispose(): void;
  readonly manifest: TaskModel['manifest'] & { readonly weights: readonly { name: string; shape: readonly number[]; layer: string }[] };
}

const line = (s: string) => process.stdout.write(s + '\n');
const fmt = (x: number) => (Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(3) : x.toFixed(4));

/**
 * nnc train SPEC.nn for a neural model `name` (ir: the lowered model, for its readout). `args`: the
 * arguments after the spec.
 */
export async function trainNeural(spec: string, text: string, ir: ModelIR, readout: TaskModel['readout'], args: readonly string[]): Promise<number> {
  const parsed = parseFlags(args);
  let { flags } = parsed;
  let resumed: State | undefined;
  if (flags.resume) {
    const saved = JSON.parse(readText(join(flags.resume, 'state.json'), 'checkpoint')) as State;
    if (saved.nnc !== 'train-checkpoint' || saved.version !== 1) throw new TrainUsageError(`'${flags.resume}' is not an nnc train checkpoint (its state.json says otherwise)`);
    for (const k of parsed.given) {
      if (FREE_ON_RESUME.has(k) || JSON.stringify(flags[k]) === JSON.stringify(saved.flags[k])) continue;
      const name = Object.entries(FLAGS).find(([, [key]]) => key === k)![0];
      throw new TrainUsageError(`${name} ${String(flags[k])} differs from the checkpoint's ${String(saved.flags[k] ?? '(unset)')}: --resume continues the run with its own settings (only --epochs, --patience, --backend, --threads, --out, --checkpoint, --log may change)`);
    }
    if (saved.flags.schedule === 'cosine' && parsed.given.has('epochs') && flags.epochs !== saved.flags.epochs) throw new TrainUsageError(`--epochs cannot change when resuming a run with --schedule cosine: the schedule anneals over the run's steps (${saved.flags.epochs} epochs)`);
    flags = { ...saved.flags, ...Object.fromEntries([...parsed.given].filter((k) => FREE_ON_RESUME.has(k)).map((k) => [k, flags[k]])), resume: flags.resume };
    resumed = saved;
  }
  if (!flags.data) throw new TrainUsageError('train needs --data FILE.jsonl');
  const out = flags.out ?? join(dirname(spec), `${basename(spec, extname(spec))}.safetensors`);
  const ckpt = flags.checkpoint ?? flags.resume ?? `${out.replace(/\.safetensors$/, '')}.ckpt`;
  const trainText = readText(flags.data, 'data file');
  const validText = flags.valid !== undefined ? readText(flags.valid, 'validation file') : undefined;
  if (resumed && resumed.spec !== hash(text)) return fail(`${spec} changed since the checkpoint in ${flags.resume} was written; resume with the spec it was trained from`);
  if (resumed && resumed.data !== hash(trainText)) return fail(`${flags.data} is not the data the checkpoint in ${flags.resume} was trained on (its contents differ)`);
  const initBytes = flags.init !== undefined ? readFileSync(flags.init) : undefined;

  const mod = await compileInProcess(text, spec);
  const create = mod[`create${ir.name}`] as ((o: object) => Promise<RunModel>) | undefined;
  if (typeof create !== 'function') throw new Error(`the module of ${spec} has no create${ir.name}()`);
  const model = await create({ backend: flags.backend, ...(flags.threads !== undefined ? { threads: flags.threads } : {}) });
  const vocab = (model as unknown as { vocabulary?: (input: string) => ReturnType<NonNullable<TaskModel['vocabulary']>> }).vocabulary;
  const taskModel: TaskModel = {
    manifest: model.manifest,
    readout,
    vocabulary: (input) => {
      try {
        return vocab?.(input);
      } catch {
        return undefined; // that input declares no vocabulary
      }
    },
  };
  try {
    let task: Task;
    let train: Example[];
    let valid: Example[] | undefined;
    try {
      ({ task, examples: train } = parseExamples(trainText, flags.data, taskModel));
      valid = validText !== undefined ? parseExamples(validText, flags.valid!, taskModel, task).examples : undefined;
    } catch (e) {
      if (e instanceof DataError) return fail(e.message);
      throw e;
    }
    if (flags.labelSmoothing && task.loss !== 'cross_entropy') throw new TrainUsageError(`--label-smoothing applies to logits outputs (cross_entropy); ${ir.name}'s output ends in ${readout === 'logits' ? 'numbers (mse)' : 'a softmax'}`);
    const batchesPerEpoch = Math.ceil(train.length / flags.batch);
    const total = flags.epochs * batchesPerEpoch;
    const dModel = flags.dModel ?? model.manifest.weights.find((w) => w.layer === 'embedding')?.shape[1];
    if (flags.schedule === 'noam' && dModel === undefined) throw new TrainUsageError(`--schedule noam needs --d-model (${ir.name} has no embedding to take its width from)`);
    const lr = flags.lr ?? (flags.schedule === 'noam' ? 1 : 1e-3);
    const optimizer: OptimizerOptions = flags.optimizer === 'sgd'
      ? { kind: 'sgd', lr, momentum: flags.momentum, ...(flags.weightDecay !== undefined ? { weightDecay: flags.weightDecay } : {}) }
      : { kind: flags.optimizer, lr, ...(flags.weightDecay !== undefined ? { weightDecay: flags.weightDecay } : {}) };
    const schedule: ScheduleOptions = flags.schedule === 'noam' ? { kind: 'noam', warmup: flags.warmup, dModel: dModel! }
      : flags.schedule === 'step' ? { kind: 'step', stepSize: flags.stepSize, gamma: flags.gamma }
      : flags.schedule === 'cosine' ? { kind: 'cosine', tMax: total }
      : { kind: 'constant' };
    const { createTrainer } = await import('./train/trainer.ts');
    const trainer: Trainer = createTrainer(model, {
      loss: task.loss, ...(flags.labelSmoothing ? { labelSmoothing: flags.labelSmoothing } : {}), optimizer, schedule, seed: flags.seed,
      ...(flags.clip !== undefined ? { clip: { maxNorm: flags.clip } } : {}),
    });
    if (resumed) {
      model.loadWeights(readFileSync(join(flags.resume!, 'weights.safetensors')));
      trainer.restore(readFileSync(join(flags.resume!, 'optimizer.safetensors')));
      if (trainer.steps !== resumed.step) return fail(`${flags.resume}: optimizer.safetensors has ${trainer.steps} steps, state.json ${resumed.step}: the checkpoint is damaged`);
    } else model.loadWeights(initBytes ?? initialWeights(model.manifest.weights, flags.seed));

    const state = {
      epoch: resumed?.epoch ?? 0, batch: resumed?.batch ?? 0, random: resumed?.random ?? streamOf(flags.seed, 'data', 0).state,
      lossSum: resumed?.lossSum ?? 0, tokens: resumed?.tokens ?? 0, best: resumed?.best ?? null, bad: resumed?.bad ?? 0,
    };
    const save = () => {
      mkdirSync(ckpt, { recursive: true });
      writeAtomic(join(ckpt, 'weights.safetensors'), model.saveWeights());
      writeAtomic(join(ckpt, 'optimizer.safetensors'), trainer.state());
      const s: State = { nnc: 'train-checkpoint', version: 1, flags: { ...flags, resume: undefined }, spec: hash(text), data: hash(trainText), ...state, step: trainer.steps };
      writeAtomic(join(ckpt, 'state.json'), JSON.stringify(s, null, 2) + '\n');
    };
    const writeOut = (bytes: Uint8Array) => {
      mkdirSync(dirname(out), { recursive: true });
      writeAtomic(out, bytes);
    };

    let interrupted = false;
    const onInt = () => {
      if (interrupted) process.exit(130); // a second Ctrl-C: stop now
      interrupted = true;
    };
    process.on('SIGINT', onInt);
    const tty = process.stderr.isTTY === true;
    const { default: progress } = tty ? await import('cli-progress') : { default: undefined };
    const bar = progress ? new progress.SingleBar({ format: 'epoch {epoch} |{bar}| step {value}/{total} · loss {loss} · {tps} tok/s · ETA {eta_formatted}', stream: process.stderr, hideCursor: true, clearOnComplete: true, etaBuffer: 50 }, progress.Presets.shades_classic) : undefined;
    line(`${ir.name}: ${train.length} examples${valid ? ` (+${valid.length} validation)` : ''}, ${batchesPerEpoch} batches of ≤ ${flags.batch} per epoch, loss ${task.loss}, ${flags.optimizer} lr ${lr}${flags.schedule !== 'constant' ? ` (${flags.schedule})` : ''}, backend ${flags.backend}${resumed ? `; resumed from ${flags.resume} at epoch ${state.epoch + 1}, step ${trainer.steps}` : ''}`);
    try {
      for (; state.epoch < flags.epochs; state.epoch++) {
        const order = batchOrder(train, flags.batch, new Random(state.random));
        const t0 = performance.now();
        let seen = 0;
        bar?.start(order.length, state.batch, { epoch: `${state.epoch + 1}/${flags.epochs}`, loss: '-', tps: '-' });
        for (; state.batch < order.length; state.batch++) {
          if (interrupted) break;
          const b = toBatch(task, train, order[state.batch]!);
          const r = await trainer.step(b);
          state.lossSum += r.loss * r.tokens;
          state.tokens += r.tokens;
          seen += b.tokens;
          if (flags.log) appendFileSync(flags.log, JSON.stringify({ epoch: state.epoch + 1, step: trainer.steps, loss: r.loss, gradNorm: r.gradNorm, lr: r.lr }) + '\n');
          bar?.update(state.batch + 1, { loss: fmt(state.lossSum / state.tokens), tps: Math.round(seen / ((performance.now() - t0) / 1000)) });
          await new Promise((res) => setImmediate(res)); // let a Ctrl-C in
        }
        bar?.stop();
        if (interrupted) {
          save();
          process.stderr.write(`nnc train: interrupted in epoch ${state.epoch + 1} after step ${trainer.steps}; checkpoint written to ${ckpt} (continue with --resume ${ckpt})\n`);
          return 130;
        }
        const secs = (performance.now() - t0) / 1000;
        let report = `epoch ${state.epoch + 1}/${flags.epochs}: step ${trainer.steps}, loss ${fmt(state.lossSum / state.tokens)}, ${Math.round(seen / secs)} tok/s, ${secs.toFixed(1)} s`;
        let improved = true;
        if (valid) {
          let [sum, n, correct] = [0, 0, 0];
          for (const idx of inOrder(valid, flags.batch)) {
            const ev = await trainer.evaluate(toBatch(task, valid, idx));
            [sum, n, correct] = [sum + ev.loss * ev.tokens, n + ev.tokens, correct + ev.accuracy * ev.tokens];
          }
          const vl = sum / n;
          report += `; valid loss ${fmt(vl)}${task.loss === 'mse' ? '' : `, perplexity ${fmt(Math.exp(Math.min(vl, 50)))}, token accuracy ${(correct / n).toFixed(4)}`}`;
          improved = state.best === null || vl < state.best;
          if (improved) [state.best, state.bad] = [vl, 0];
          else state.bad++;
        }
        line(report);
        if (improved) writeOut(model.saveWeights());
        // the next epoch's position, then the checkpoint (what --resume continues from)
        const next = state.epoch + 1;
        Object.assign(state, { batch: 0, random: streamOf(flags.seed, 'data', next).state, lossSum: 0, tokens: 0 });
        state.epoch = next;
        save();
        state.epoch = next - 1;
        if (flags.patience !== undefined && state.bad >= flags.patience) {
          line(`early stop: the validation loss has not improved for ${state.bad} epoch${state.bad > 1 ? 's' : ''} (best ${fmt(state.best!)})`);
          state.epoch++;
          break;
        }
      }
    } finally {
      process.off('SIGINT', onInt);
      bar?.stop();
    }
    line(`wrote ${out}${valid ? ` (the weights of the best validation loss, ${fmt(state.best!)})` : ''}; checkpoint in ${ckpt}`);
    return 0;
  } finally {
    model.dispose();
  }
}

function fail(message: string): number {
  process.stderr.write(`nnc train: ${message}\n`);
  return 1;
}
