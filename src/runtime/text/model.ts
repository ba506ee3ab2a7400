/**
 * Text in, text out (docs/text.md): a generated model whose inputs declare vocabularies takes
 * strings where it takes token ids, returns `text` beside `ids` from generate() and stream(), and
 * has encode() / decode(). withText wraps a compiled model; n-gram models (src/runtime/ngram/model.ts) use
 * the same helpers.
 */
import { NncError, typeName } from '../errors.ts';
import type { GenerateOptions, GenerateResult, StepEvent } from '../decode.ts';
import type { NncModel } from '../model.ts';
import { TextVocab, type VocabData } from './vocab.ts';

/** A text input: one string (one row) or one string per row. */
export type TextInput = string | readonly string[];

export interface TextGenerateResult extends GenerateResult {
  /** Per input row: ids[b] as text (pad, bos and eos left out). */
  text: string[];
  nBest?: { ids: number[]; score: number; text?: string }[][];
}
export interface TextStepEvent extends StepEvent {
  /** Per row: its best hypothesis so far, as text. */
  text: string[];
}

/** What a model with vocabularies adds to the model surface. */
export interface TextMethods<I> {
  /** Text → ids with input `input`'s vocabulary (default: the first input). */
  encode(text: string, input?: keyof I & string): number[];
  /** Ids → text with input `input`'s vocabulary (default: the vocabulary of what generate() returns). */
  decode(ids: ArrayLike<number>, input?: keyof I & string): string;
  /** An input's vocabulary. */
  vocabulary(input?: keyof I & string): TextVocab;
}

/** A compiled model whose inputs take text too. */
export type TextModel<I, O, G = I> = Omit<NncModel<I, O, G>, 'generate' | 'stream'> & TextMethods<I> & {
  generate(inputs: G, options?: GenerateOptions): Promise<TextGenerateResult>;
  stream(inputs: G, options?: GenerateOptions): AsyncGenerator<TextStepEvent, TextGenerateResult>;
};

/** Rows of text → a padded [B, T] tokens input (pad id, or 0), each row after `prefix` ids. */
export function textToTensor(vocab: TextVocab, name: string, value: TextInput, prefix: readonly number[] = []): { data: Int32Array; shape: [number, number]; lengths: number[] } {
  const rows = typeof value === 'string' ? [value] : value;
  if (rows.length === 0) throw new NncError(`input '${name}': no rows (an empty list of strings)`);
  const ids = rows.map((text, b) => {
    if (typeof text !== 'string') throw new NncError(`input '${name}': row ${b} is ${typeName(text)}, expected a string`);
    const r = [...prefix, ...vocab.encode(text, `input '${name}', row ${b}`)];
    if (r.length === 0) throw new NncError(`input '${name}', row ${b}: ${JSON.stringify(text)} is no tokens; every row needs at least one`);
    return r;
  });
  const T = Math.max(...ids.map((r) => r.length));
  const data = new Int32Array(ids.length * T).fill(vocab.specials.pad ?? 0);
  ids.forEach((r, b) => data.set(r, b * T));
  return { data, shape: [ids.length, T], lengths: ids.map((r) => r.length) };
}

/** Whether an input value is text (rather than ids). */
export function isText(v: unknown): v is TextInput {
  return typeof v === 'string' || (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string'));
}

/** The vocabularies of a model's inputs, and which one its generated ids are in. */
export class Vocabularies {
  readonly byInput: ReadonlyMap<string, TextVocab>;
  /** The input generated ids are fed back to (a seq2seq target, a language model's text). */
  readonly generated: string | undefined;
  readonly first: string;

  constructor(data: Readonly<Record<string, VocabData>>, inputs: readonly string[], generated: string | undefined) {
    this.byInput = new Map(Object.entries(data).map(([k, v]) => [k, new TextVocab(v)]));
    this.generated = generated;
    this.first = inputs[0]!;
  }

  get(input: string | undefined, method: string, fallback: string | undefined): TextVocab {
    const name = input ?? fallback;
    if (typeof name !== 'string') throw new NncError(`${method}(): say which input's vocabulary to use`);
    const v = this.byInput.get(name);
    if (!v) {
      const have = [...this.byInput.keys()];
      throw new NncError(`${method}(): input '${name}' has no vocabulary; ${have.length ? `inputs with one: ${have.join(', ')}` : 'no input declares one'}`);
    }
    return v;
  }

  /** Inputs with text values converted to tensors; `prefix` gives ids put before an input's text (bos). */
  convert(inputs: unknown, prefix: (name: string) => readonly number[]): unknown {
    if (typeof inputs !== 'object' || inputs === null) return inputs;
    const out: Record<string, unknown> = { ...(inputs as Record<string, unknown>) };
    for (const [name, v] of Object.entries(out)) {
      if (!isText(v)) continue;
      const vocab = this.byInput.get(name);
      if (!vocab) throw new NncError(`input '${name}' was given text, but it declares no vocabulary: pass token ids, or declare one (tokens(vocab = "vocab.json"))`);
      out[name] = textToTensor(vocab, name, v, prefix(name));
    }
    return out;
  }

  /**
   * Shallow fusion needs one vocabulary: a language model given as generate's `lm` that has text
   * methods must map every id to the token this model's generated vocabulary does. (Sizes are
   * checked in decode.ts for every `lm`; a model without vocabularies shares ids only.)
   */
  checkLm(options: GenerateOptions | undefined): void {
    const lm: unknown = typeof options === 'object' && options !== null ? options.lm : undefined;
    const mine = this.generated !== undefined ? this.byInput.get(this.generated) : undefined;
    if (!mine || typeof lm !== 'object' || lm === null || typeof (lm as Partial<TextMethods<unknown>>).vocabulary !== 'function') return;
    let theirs: TextVocab;
    try {
      theirs = (lm as TextMethods<unknown>).vocabulary();
    } catch (e) {
      if (e instanceof NncError) return; // it declares no vocabulary: ids only
      throw e;
    }
    if (theirs.size !== mine.size) return;
    for (let id = 0; id < mine.size; id++) {
      const [a, b] = [mine.token(id), theirs.token(id)];
      if (a !== b) throw new NncError(`generate option 'lm': id ${id} is ${JSON.stringify(b)} in the language model's vocabulary but ${JSON.stringify(a)} in the one this model generates from: shallow fusion needs one vocabulary`);
    }
  }

  /** The generated ids as text, added to a result. */
  withText(r: GenerateResult): TextGenerateResult {
    const v = this.generated !== undefined ? this.byInput.get(this.generated) : undefined;
    const dec = (ids: number[]) => (v ? v.decode(ids) : ids.join(' '));
    return { ...r, text: r.ids.map(dec), ...(r.nBest ? { nBest: r.nBest.map((row) => row.map((h) => ({ ...h, text: dec(h.ids) }))) } : {}) };
  }

  methods<I>(): TextMethods<I> {
    return {
      encode: (text, input) => this.get(input, 'encode', this.first).encode(text, `encode(${JSON.stringify(typeof text === 'string' && text.length > 20 ? `${text.slice(0, 20)}…` : text)})`),
      decode: (ids, input) => this.get(input, 'decode', this.generated ?? this.first).decode(ids),
      vocabulary: (input) => this.get(input, 'vocabulary', this.first),
    };
  }
}

/** encode / decode / vocabulary over a model's vocabularies, without a model (what a generated module exports). */
export function textMethods<I>(data: Readonly<Record<string, VocabData>>, inputs: readonly string[], generated: string | undefined): TextMethods<I> {
  return new Vocabularies(data, inputs, generated).methods<I>();
}

/**
 * A compiled model with its inputs' vocabularies: text where ids go, text beside ids out. `target`
 * names a seq2seq model's target input, whose text gets `bos` first in forward() (teacher forcing).
 */
export function withText<I, O, G>(
  model: NncModel<I, O, G>, data: Readonly<Record<string, VocabData>>, opts: { generated?: string; target?: string },
): TextModel<I, O, G> {
  const inputs = model.manifest.inputs.map((i) => i.name);
  const v = new Vocabularies(data, inputs, opts.generated);
  const bos = () => {
    const b = model.manifest.decode?.bos;
    return b !== undefined ? [b] : [];
  };
  const prefix = (name: string) => (name === opts.target ? bos() : []);
  const text: Record<PropertyKey, unknown> = {
    forward: async (inputs: I) => model.forward(v.convert(inputs, prefix) as I),
    async generate(inputs: G, options?: GenerateOptions): Promise<TextGenerateResult> {
      v.checkLm(options);
      return v.withText(await model.generate(v.convert(inputs, () => []) as G, options));
    },
    async *stream(inputs: G, options?: GenerateOptions): AsyncGenerator<TextStepEvent, TextGenerateResult> {
      v.checkLm(options);
      const it = model.stream(v.convert(inputs, () => []) as G, options);
      const dec = (ids: number[][]) => v.withText({ ids, scores: [] }).text;
      for (;;) {
        const r = await it.next();
        if (r.done) return v.withText(r.value);
        yield { ...r.value, text: dec(r.value.ids) };
      }
    },
    ...v.methods<I>(),
  };
  // The model itself with the text methods in front: everything else (loadWeights with its options,
  // backend, device, lmSession, dispose, …) is the model's own, called on the model.
  return new Proxy(model, {
    get(target, key) {
      if (Object.hasOwn(text, key)) return text[key];
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
    has: (target, key) => Object.hasOwn(text, key) || Reflect.has(target, key),
  }) as unknown as TextModel<I, O, G>;
}
