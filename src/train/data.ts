/**
 * Training data for `nnc train` (and any other loop around createTrainer, in Node or a browser): JSON
 * Lines as docs/training.md describes (one example per line, keyed by the spec's input names; the
 * target under the output's name, or implied for language models and seq2seq pairs), checked line by
 * line before anything trains, then grouped into batches of similar lengths, padded, in a seeded
 * order.
 *
 * Nothing here reads files: `parseExamples` takes a file's text and its name (for the messages).
 */
import type { Batch } from './trainer.ts';
import type { LossKind } from './losses.ts';
import { Random } from './random.ts';

/** A problem in a data file: the message names the file, the 1-based line and the field. */
export class DataError extends Error {}

/** What the data module needs to know of a model: its manifest's inputs and output, its decode statement, how its output reads. */
export interface TaskModel {
  readonly manifest: {
    readonly model: string;
    readonly inputs: readonly { readonly name: string; readonly form: 'tokens' | 'vectors'; readonly vocab?: number; readonly dim?: number; readonly maxLen?: number; readonly fixedSteps?: boolean }[];
    readonly output: { readonly name: string; readonly shape: readonly (number | string)[] };
    readonly decode?: { readonly bos?: number; readonly eos?: number };
  };
  /** The output before the final mask: a softmax ('prob'), a log_softmax ('logprob') or anything else ('logits'). */
  readonly readout: 'prob' | 'logprob' | 'logits';
  /** An input's vocabulary (when the spec declares one): text in a line is encoded with it. */
  vocabulary?(input: string): { encode(text: string, where?: string): number[]; readonly specials: { readonly pad?: number } } | undefined;
}

type Row = number[] | number[][];

/** One example, ready to batch: a row per input, and the target (class id(s) or numbers). */
export interface Example {
  readonly inputs: readonly Row[];
  readonly target: number | number[] | number[][];
}

/** What a line holds and what the model is trained to output. */
export interface Task {
  /** lm: the input shifted by one; seq2seq: bos/eos around the target input; target: under the output's name. */
  readonly kind: 'lm' | 'seq2seq' | 'target';
  /** The output has a time axis (a target per step). */
  readonly perStep: boolean;
  /** The output's last size (classes, or numbers per position). */
  readonly width: number;
  /** The loss that fits the output: nll on log_softmax, nll_prob on softmax, cross_entropy on logits, mse on number targets. */
  readonly loss: LossKind;
  readonly model: TaskModel;
}

const isId = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x);
const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const show = (v: unknown) => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
};

/**
 * The task of a model, from its manifest and a first example line (whether it holds the output's
 * name decides between a language model and a target given in the line).
 */
export function taskOf(model: TaskModel, first: Record<string, unknown>, where: string): Task {
  const m = model.manifest;
  const shape = m.output.shape;
  const perStep = shape.length === 3;
  const width = shape[shape.length - 1] as number;
  let kind: Task['kind'];
  if (m.inputs.length === 2) {
    if (m.decode?.eos === undefined || m.decode.bos === undefined) {
      throw new DataError(`training seq2seq model ${m.model} needs its bos and eos (the lines hold neither): add a decode statement, e.g. 'decode greedy, bos = 1, eos = 2'`);
    }
    kind = 'seq2seq';
  } else if (Object.hasOwn(first, m.output.name)) kind = 'target';
  else if (m.inputs[0]!.form === 'tokens' && perStep && width === m.inputs[0]!.vocab) kind = 'lm';
  else throw new DataError(`${where}: missing field '${m.output.name}' (the target: model ${m.model} is not a language model, so each line holds its target under the output's name)`);
  let loss: LossKind = model.readout === 'logprob' ? 'nll' : model.readout === 'prob' ? 'nll_prob' : 'cross_entropy';
  if (kind === 'target') {
    const t = first[m.output.name];
    const sample = perStep && Array.isArray(t) ? t[0] : t;
    if (Array.isArray(sample) || (typeof sample === 'number' && !Number.isInteger(sample))) loss = 'mse';
  }
  return { kind, perStep, width, loss, model };
}

/** Parses and checks one JSON Lines file. `task` is found from the first line when not given (the training file's task checks the validation file). */
export function parseExamples(text: string, file: string, model: TaskModel, task?: Task): { task: Task; examples: Example[] } {
  const examples: Example[] = [];
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.replace(/\r$/, '');
    if (line.trim() === '') continue;
    const where = `${file}:${n + 1}`;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw new DataError(`${where}: not JSON (${(e as Error).message})`);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new DataError(`${where}: a line must be a JSON object keyed by the input names (${model.manifest.inputs.map((i) => i.name).join(', ')}), got ${show(obj)}`);
    task ??= taskOf(model, obj as Record<string, unknown>, where);
    examples.push(parseLine(task, obj as Record<string, unknown>, where));
  }
  if (examples.length === 0) throw new DataError(`${file}: no examples (the file is empty)`);
  return { task: task!, examples };
}

function parseLine(task: Task, obj: Record<string, unknown>, where: string): Example {
  const m = task.model.manifest;
  const keys = new Set([...m.inputs.map((i) => i.name), ...(task.kind === 'target' ? [m.output.name] : [])]);
  for (const k of Object.keys(obj)) {
    if (!keys.has(k)) {
      const why = k === m.output.name ? ` (model ${m.model} is ${task.kind === 'lm' ? 'a language model: its target is its input shifted by one' : 'seq2seq: its target is the target input'})` : '';
      throw new DataError(`${where}: unknown field '${k}'${why}; the fields are ${[...keys].join(', ')}`);
    }
  }
  const rows = m.inputs.map((inp, k) => {
    if (!Object.hasOwn(obj, inp.name)) throw new DataError(`${where}: missing input '${inp.name}'`);
    const extra = task.kind === 'lm' ? 1 : task.kind === 'seq2seq' && k === 1 ? 1 : 0;
    return inputRow(task, inp, obj[inp.name], `${where}: field '${inp.name}'`, extra);
  });
  if (task.kind === 'lm') {
    const x = rows[0] as number[];
    if (x.length < 2) throw new DataError(`${where}: field '${m.inputs[0]!.name}' needs at least 2 tokens (the model reads x[0..n-2] and predicts x[1..n-1])`);
    return { inputs: [x.slice(0, -1)], target: x.slice(1) };
  }
  if (task.kind === 'seq2seq') {
    const t = rows[1] as number[];
    return { inputs: [rows[0]!, [m.decode!.bos!, ...t]], target: [...t, m.decode!.eos!] };
  }
  if (!Object.hasOwn(obj, m.output.name)) throw new DataError(`${where}: missing field '${m.output.name}' (the target)`);
  return { inputs: rows, target: targetOf(task, obj[m.output.name], rows[rows.length - 1]!.length, `${where}: field '${m.output.name}'`) };
}

/** An input's value: token ids (or text through its vocabulary), or steps of `dim` numbers. `extra`: steps the trainer adds (bos, or the LM's shift). */
function inputRow(task: Task, inp: TaskModel['manifest']['inputs'][number], v: unknown, where: string, extra: number): Row {
  let row: Row;
  if (inp.form === 'tokens') {
    if (typeof v === 'string') {
      const vocab = task.model.vocabulary?.(inp.name);
      if (!vocab) throw new DataError(`${where} is text, but the spec declares no vocabulary for input '${inp.name}': give token ids (or declare tokens(vocab = "vocab.json"))`);
      try {
        row = vocab.encode(v, where);
      } catch (e) {
        throw new DataError(`${where}: ${(e as Error).message}`);
      }
      if (row.length === 0) throw new DataError(`${where}: ${show(v)} is no tokens; every example needs at least one`);
    } else {
      if (!Array.isArray(v) || v.length === 0) throw new DataError(`${where} must be a non-empty array of token ids${task.model.vocabulary?.(inp.name) ? ' or text' : ''}, got ${show(v)}`);
      const bad = v.findIndex((t) => !isId(t));
      if (bad >= 0) throw new DataError(`${where}[${bad}]: ${show(v[bad])} is not a token id (a whole number)`);
      row = v as number[];
    }
    const out = (row as number[]).findIndex((t) => t < 0 || t >= inp.vocab!);
    if (out >= 0) throw new DataError(`${where}[${out}]: id ${(row as number[])[out]} is out of range [0, ${inp.vocab})`);
  } else {
    if (!Array.isArray(v) || v.length === 0) throw new DataError(`${where} must be a non-empty array of steps, each ${inp.dim} numbers, got ${show(v)}`);
    const bad = v.findIndex((s) => !Array.isArray(s) || s.length !== inp.dim || !s.every(isNum));
    if (bad >= 0) throw new DataError(`${where}[${bad}]: a step must be ${inp.dim} finite numbers, got ${show(v[bad])}`);
    row = v as number[][];
  }
  const steps = row.length - (task.kind === 'lm' ? 1 : 0) + (extra && task.kind === 'seq2seq' ? 1 : 0);
  if (inp.maxLen !== undefined && steps > inp.maxLen) throw new DataError(`${where}: ${row.length} steps${extra ? ` (${steps} with the ${task.kind === 'lm' ? 'shift' : 'bos'} the trainer adds)` : ''} exceed the input's max_len ${inp.maxLen}`);
  if (inp.fixedSteps && steps !== inp.maxLen) throw new DataError(`${where}: ${row.length} steps; the model reads exactly max_len = ${inp.maxLen} (flatten)`);
  return row;
}

function targetOf(task: Task, v: unknown, steps: number, where: string): Example['target'] {
  const W = task.width;
  const cls = (x: unknown, at: string): number => {
    if (!isId(x)) throw new DataError(`${at}: ${show(x)} is not a class id (a whole number)`);
    if (x < 0 || x >= W) throw new DataError(`${at}: class ${x} is out of range [0, ${W})`);
    return x;
  };
  const vec = (x: unknown, at: string): number[] => {
    if (!Array.isArray(x) || x.length !== W || !x.every(isNum)) throw new DataError(`${at} must be ${W} finite numbers, got ${show(x)}`);
    return x as number[];
  };
  const mse = task.loss === 'mse';
  if (!task.perStep) return mse ? vec(v, where) : cls(v, where);
  if (!Array.isArray(v) || v.length !== steps) throw new DataError(`${where} must have one entry per step of the input (${steps}), got ${Array.isArray(v) ? v.length : show(v)}`);
  return v.map((x, i) => (mse ? vec(x, `${where}[${i}]`) : cls(x, `${where}[${i}]`))) as number[] | number[][];
}

/** The steps of an example (its longest input): what batches are grouped by. */
const stepsOf = (e: Example) => Math.max(...e.inputs.map((r) => r.length));

/**
 * One epoch's batches as lists of example indices: the examples shuffled, sorted by length (ties
 * in shuffled order), cut into batches of `size`, and the batches shuffled: similar lengths pad
 * little, and the order still changes every epoch. `random` is that epoch's generator.
 */
export function batchOrder(examples: readonly Example[], size: number, random: Random): number[][] {
  const idx = random.shuffle(examples.map((_, i) => i));
  const len = examples.map(stepsOf);
  idx.sort((a, b) => len[a]! - len[b]!); // stable: ties keep the shuffled order
  const out: number[][] = [];
  for (let i = 0; i < idx.length; i += size) out.push(idx.slice(i, i + size));
  return random.shuffle(out);
}

/** Consecutive batches in file order (validation). */
export function inOrder(examples: readonly Example[], size: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < examples.length; i += size) out.push(examples.slice(i, i + size).map((_, j) => i + j));
  return out;
}

/** The examples `idx` as a padded batch: the model's inputs (with lengths) and the targets the trainer scores. */
/** `tokens`: the input steps the batch holds (its last input's lengths), for tokens per second. */
export function toBatch(task: Task, examples: readonly Example[], idx: readonly number[]): Batch & { readonly tokens: number } {
  const m = task.model.manifest;
  const rows = idx.map((i) => examples[i]!);
  const B = rows.length;
  const inputs: Record<string, unknown> = {};
  let lastLengths: number[] = [];
  m.inputs.forEach((inp, k) => {
    const lengths = rows.map((e) => e.inputs[k]!.length);
    const T = inp.fixedSteps ? inp.maxLen! : Math.max(...lengths);
    if (inp.form === 'tokens') {
      const data = new Int32Array(B * T).fill(task.model.vocabulary?.(inp.name)?.specials.pad ?? 0);
      rows.forEach((e, b) => data.set(e.inputs[k] as number[], b * T));
      inputs[inp.name] = { data, shape: [B, T], lengths };
    } else {
      const D = inp.dim!;
      const data = new Float32Array(B * T * D);
      rows.forEach((e, b) => (e.inputs[k] as number[][]).forEach((s, t) => data.set(s, (b * T + t) * D)));
      inputs[inp.name] = { data, shape: [B, T, D], lengths };
    }
    lastLengths = lengths;
  });
  const W = task.width;
  const mse = task.loss === 'mse';
  const tokens = lastLengths.reduce((a, c) => a + c, 0);
  if (!task.perStep) {
    const data = mse ? new Float32Array(B * W) : new Int32Array(B);
    rows.forEach((e, b) => (mse ? data.set(e.target as number[], b * W) : (data[b] = e.target as number)));
    return { inputs, targets: { data, shape: mse ? [B, W] : [B] }, tokens };
  }
  const T = Math.max(...lastLengths);
  const data = mse ? new Float32Array(B * T * W) : new Int32Array(B * T);
  rows.forEach((e, b) => (e.target as (number | number[])[]).forEach((x, t) => (mse ? data.set(x as number[], (b * T + t) * W) : (data[b * T + t] = x as number))));
  return { inputs, targets: { data, shape: mse ? [B, T, W] : [B, T], lengths: lastLengths }, tokens };
}
