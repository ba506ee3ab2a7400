/**
 * An n-gram model with the surface of every generated model (docs/ngram.md): forward() returns
 * next-token log-probabilities per position, generate() and stream() decode through the runtime's
 * decode loop (greedy, beam, sampling, shallow fusion) with an n-gram DecodeSession, and text goes
 * in and out as for any model with a vocabulary. Its "weights" are an ARPA file: loadWeights()
 * reads one, fit() counts a corpus, toArpa() / saveWeights() write one. No kernels, no backend.
 */
import { decode, decodeStream, type DecodeDefaults, type DecodeSession, type GenerateOptions, type StepOut } from '../decode.ts';
import { NncError, typeName } from '../errors.ts';
import { checkInputNames, prepareInput } from '../inputs.ts';
import type { ModelManifest } from '../model.ts';
import type { BackendName, CreateOptions, Tensor } from '../types.ts';
import { Vocabularies, isText, type TextGenerateResult, type TextMethods, type TextStepEvent } from '../text/model.ts';
import type { TextVocab, VocabData } from '../text/vocab.ts';
import { NgramLM, type FitReport, type NgramVocab, type Perplexity } from './lm.ts';
import type { Smoothing } from './smooth.ts';

/** What a generated module records of an `ngram` statement. */
export interface NgramSpec {
  readonly order: number;
  readonly smoothing: Smoothing;
  readonly alpha?: number;
  readonly lambdas?: readonly number[];
  readonly k?: number;
  readonly discount?: number;
  readonly unigram?: 'smoothed' | 'ml';
  readonly bos: number;
  readonly eos: number;
}

/** A corpus: text (one sentence per line, the last line's newline optional), sentences as text, or sentences as token ids (without bos and eos). */
export type Corpus = string | readonly string[] | readonly ArrayLike<number>[];

export interface NgramFitOptions {
  /** Held-out sentences (interpolated smoothing tunes its weights on them; default: the last 10 % of the corpus). */
  readonly heldout?: Corpus;
}

/** The n-gram model object (the same surface as a compiled neural model, plus counting and ARPA). */
export interface NgramModel<I, O, G = I> extends TextMethods<I> {
  readonly backend: BackendName;
  readonly device: string;
  readonly manifest: ModelManifest;
  readonly spec: NgramSpec;
  /** Loads a fitted model: an ARPA file (bytes or text), as KenLM, SRILM or toArpa() write it. */
  loadWeights(src: Uint8Array | ArrayBuffer | string): void;
  /** Fits the model by counting a corpus; replaces what was loaded. */
  fit(corpus: Corpus, options?: NgramFitOptions): FitReport;
  /** Next-token log-probabilities (natural log; stupid back-off: log scores) at every position; 0 at padded steps. */
  forward(inputs: I): Promise<O>;
  generate(inputs: G, options?: GenerateOptions): Promise<TextGenerateResult>;
  stream(inputs: G, options?: GenerateOptions): AsyncGenerator<TextStepEvent, TextGenerateResult>;
  /** Perplexity of a corpus: each sentence scored after <s>, with its </s>. */
  perplexity(corpus: Corpus): Perplexity;
  /** The model as an ARPA file. */
  toArpa(): string;
  /** The ARPA file as UTF-8 bytes (what loadWeights reads back). */
  saveWeights(): Uint8Array;
  /** A decode session over `batch` rows, each starting from <s> (generate's `lm` option). */
  lmSession(batch: number): DecodeSession & { close(): void };
  dispose(): void;
}

class Ngram {
  readonly backend: BackendName = 'cpu';
  readonly device = 'n-gram counts (no kernels)';
  readonly manifest: ModelManifest;
  readonly spec: NgramSpec;
  private lm: NgramLM | undefined;
  private disposed = false;
  private readonly vocab: NgramVocab;
  private readonly texts: Vocabularies;
  private readonly text: TextVocab | undefined;
  private readonly input: string;
  readonly encode: TextMethods<Record<string, unknown>>['encode'];
  readonly decode: TextMethods<Record<string, unknown>>['decode'];
  readonly vocabulary: TextMethods<Record<string, unknown>>['vocabulary'];

  constructor(manifest: ModelManifest, spec: NgramSpec, data: VocabData | undefined) {
    this.manifest = manifest;
    this.spec = spec;
    const info = manifest.inputs[0]!;
    this.input = info.name;
    this.texts = new Vocabularies(data ? { [info.name]: data } : {}, [info.name], info.name);
    this.text = data ? this.texts.byInput.get(info.name) : undefined;
    const t = this.text;
    const size = info.vocab!;
    const s = t?.specials ?? {};
    this.vocab = {
      size, bos: spec.bos, eos: spec.eos, pad: s.pad, unk: s.unk,
      token: (id) => (t ? t.token(id) : String(id)),
      id: (tok) => (t ? t.id(tok) : /^\d+$/.test(tok) ? Number(tok) : undefined),
    };
    ({ encode: this.encode, decode: this.decode, vocabulary: this.vocabulary } = this.texts.methods());
  }

  private model(method: string): NgramLM {
    if (this.disposed) throw new NncError(`this ${this.manifest.model} model was disposed`);
    if (!this.lm) throw new NncError(`${method}() before the model is fitted or loaded: call fit(corpus) or loadWeights(arpa) first`);
    return this.lm;
  }

  loadWeights(src: Uint8Array | ArrayBuffer | string): void {
    if (this.disposed) throw new NncError(`this ${this.manifest.model} model was disposed`);
    let text: string;
    if (typeof src === 'string') text = src;
    else if (src instanceof Uint8Array || src instanceof ArrayBuffer) text = new TextDecoder().decode(src);
    else throw new NncError(`loadWeights: an n-gram model loads an ARPA file (string, Uint8Array or ArrayBuffer), got ${typeName(src)}`);
    const lm = NgramLM.fromArpa(text, this.vocab);
    if (lm.order !== this.spec.order) throw new NncError(`loadWeights: the ARPA file is an order-${lm.order} model, but ${this.manifest.model} is ngram order = ${this.spec.order}`);
    this.lm = lm;
  }

  /** Sentences as ids (the vocabulary's unk, or an error, for unknown words). */
  private sentences(corpus: Corpus, what: string): ArrayLike<number>[] {
    const text = (lines: readonly string[]) => {
      if (!this.text) throw new NncError(`${what}: text needs a vocabulary, but input '${this.input}' declares none; pass sentences as token ids`);
      return lines.map((l, i) => this.text!.encode(l, `${what}, sentence ${i + 1}`));
    };
    if (typeof corpus === 'string') {
      // one sentence per line; an empty line is an empty sentence (<s> </s>), as in KenLM and SRILM
      const lines = corpus.split(/\r?\n/);
      if (lines[lines.length - 1] === '') lines.pop();
      return text(lines);
    }
    if (!Array.isArray(corpus)) throw new NncError(`${what}: expected text, a list of sentences or a list of id arrays, got ${typeName(corpus)}`);
    if (corpus.every((s) => typeof s === 'string')) return text(corpus as readonly string[]);
    return (corpus as readonly unknown[]).map((s, i) => {
      if (!Array.isArray(s) && !(ArrayBuffer.isView(s) && !(s instanceof DataView))) throw new NncError(`${what}: sentence ${i + 1} is ${typeName(s)}, expected an array of token ids`);
      return s as ArrayLike<number>;
    });
  }

  fit(corpus: Corpus, options: NgramFitOptions = {}): FitReport {
    if (this.disposed) throw new NncError(`this ${this.manifest.model} model was disposed`);
    const { bos: _b, eos: _e, ...o } = this.spec;
    const heldout = options.heldout !== undefined ? this.sentences(options.heldout, 'fit held-out data') : undefined;
    const { lm, report } = NgramLM.fit(this.sentences(corpus, 'fit'), o, this.vocab, heldout ? { heldout } : {});
    this.lm = lm;
    return report;
  }

  perplexity(corpus: Corpus): Perplexity {
    return this.model('perplexity').perplexity(this.sentences(corpus, 'perplexity'));
  }

  toArpa(): string {
    return this.model('toArpa').toArpa();
  }

  saveWeights(): Uint8Array {
    return new TextEncoder().encode(this.toArpa());
  }

  /** Rows of ids (text gets <s> first) with their lengths. */
  private rows(inputs: unknown, method: string): number[][] {
    const info = this.manifest.inputs[0]!;
    const named = checkInputNames(inputs, [info]);
    let v = Object.hasOwn(named, info.name) ? named[info.name] : undefined;
    if (isText(v)) v = (this.texts.convert({ [info.name]: v }, () => [this.spec.bos]) as Record<string, unknown>)[info.name];
    this.model(method);
    const p = prepareInput(info, v);
    return Array.from({ length: p.B }, (_, b) => Array.from(p.data.subarray(b * p.T, b * p.T + p.lengths[b]!)));
  }

  async forward(inputs: unknown): Promise<Record<string, Tensor>> {
    const lm = this.model('forward');
    const rows = this.rows(inputs, 'forward');
    const V = this.vocab.size;
    const T = Math.max(...rows.map((r) => r.length));
    const data = new Float32Array(rows.length * T * V);
    const dist = new Float64Array(V);
    rows.forEach((r, b) => {
      for (let t = 0; t < r.length; t++) {
        lm.distribution(r, t + 1, dist);
        const o = (b * T + t) * V;
        for (let w = 0; w < V; w++) data[o + w] = Math.log(dist[w]!);
      }
    });
    return { [this.manifest.output.name]: { data, shape: [rows.length, T, V] } };
  }

  /** The decode statement's values over the model's own bos and eos. */
  private defaults(): DecodeDefaults {
    return { bos: this.spec.bos, eos: this.spec.eos, ...this.manifest.decode };
  }

  async generate(inputs: unknown, options?: GenerateOptions): Promise<TextGenerateResult> {
    this.texts.checkLm(options);
    const s = new NgramSession(this.model('generate'), this.rows(inputs, 'generate'));
    return this.texts.withText(await decode(s, options ?? {}, this.defaults()));
  }

  async *stream(inputs: unknown, options?: GenerateOptions): AsyncGenerator<TextStepEvent, TextGenerateResult> {
    this.texts.checkLm(options);
    const s = new NgramSession(this.model('stream'), this.rows(inputs, 'stream'));
    const it = decodeStream(s, options ?? {}, this.defaults());
    for (;;) {
      const r = await it.next();
      if (r.done) return this.texts.withText(r.value);
      yield { ...r.value, text: this.texts.withText({ ids: r.value.ids, scores: [] }).text };
    }
  }

  lmSession(batch: number): NgramSession {
    return new NgramSession(this.model('generate'), Array.from({ length: batch }, () => [this.spec.bos]));
  }

  dispose(): void {
    this.lm = undefined;
    this.disposed = true;
  }
}

/** Decoding with an n-gram model: each row keeps its last n − 1 tokens. */
export class NgramSession implements DecodeSession {
  readonly batch: number;
  readonly vocab: number;
  private contexts: number[][] = [];
  private readonly dist: Float64Array;
  private readonly lm: NgramLM;
  private readonly prompts: number[][];

  constructor(lm: NgramLM, prompts: number[][]) {
    this.lm = lm;
    this.prompts = prompts;
    this.batch = prompts.length;
    this.vocab = lm.vocab.size;
    this.dist = new Float64Array(this.vocab);
  }

  private out(): StepOut {
    const V = this.vocab;
    const logp = new Float32Array(this.contexts.length * V);
    this.contexts.forEach((c, r) => {
      this.lm.distribution(c, c.length, this.dist);
      for (let w = 0; w < V; w++) logp[r * V + w] = Math.log(this.dist[w]!);
    });
    return { logp };
  }

  async begin(k: number): Promise<StepOut> {
    const keep = this.lm.order - 1;
    this.contexts = Array.from({ length: this.batch * k }, (_, r) => this.prompts[Math.floor(r / k)]!.slice(Math.max(0, this.prompts[Math.floor(r / k)]!.length - keep)));
    return this.out();
  }

  async step(tokens: Int32Array, parents: Int32Array | undefined): Promise<StepOut> {
    const keep = this.lm.order - 1;
    this.contexts = this.contexts.map((_, r) => {
      const c = [...this.contexts[parents ? parents[r]! : r]!, tokens[r]!];
      return keep === 0 ? [] : c.slice(Math.max(0, c.length - keep));
    });
    return this.out();
  }

  close(): void {
    this.contexts = [];
  }
}

/** Called by generated modules for a model whose statement is `ngram`. */
export async function createNgramModel<I, O, G = I>(manifest: ModelManifest, spec: NgramSpec, vocab: VocabData | undefined, _options: CreateOptions = {}): Promise<NgramModel<I, O, G>> {
  return new Ngram(manifest, spec, vocab) as unknown as NgramModel<I, O, G>;
}
