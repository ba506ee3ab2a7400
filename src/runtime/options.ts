/**
 * The options an app passes to the runtime, declared once per function: createModel()'s
 * (CREATE_OPTIONS), loadWeights()'s (LOAD_OPTIONS), and generate()'s and stream()'s
 * (GENERATE_OPTIONS: each option's type, limits, default, the strategies it applies to and the
 * `decode` statement attribute that sets it in a spec). Everything else is derived from these
 * tables — the option types apps see (their documentation included), the checks of what an app
 * passes (checkOptions: an unknown name is an error naming the nearest known one, a wrong type an
 * error naming the expected and actual value; resolveOptions adds generate()'s defaults, limits and
 * contradictions), the defaults a generated module records from its spec's decode statement
 * (decodeDefaults), and the decode statement's schema and strategy checks in the compiler
 * (src/layers/blocks.schema.ts, src/syntax/check.ts). Pure TypeScript (it imports only the
 * runtime's error class and did-you-mean helper, and types): it runs in browsers and Node.
 */
import type { DecodeSession } from './decode.ts';
import { NncError } from './errors.ts';
import { didYouMean } from './suggest.ts';
import type { BackendOption, ModelWorker } from './types.ts';

/** The widest beam (and the most n-best hypotheses). */
export const MAX_BEAM = 256;
/** The most tokens one generate() call produces per row (`maxLen`, the decode statement's `max_len`). */
export const MAX_GENERATE_LEN = 65_536;
/** The largest token id a decode statement may name (the language's size limit, 2^20, minus 1). */
const MAX_TOKEN = 1_048_575;

/**
 * What an option's value must be. `custom` options carry their TypeScript type as a phantom
 * (`custom<T>()`), checked at run time by `test`, described by `what`.
 */
type OptionType =
  | { readonly kind: 'int'; readonly min: number; readonly max: number }
  | { readonly kind: 'float'; readonly minExclusive?: number }
  | { readonly kind: 'bool' }
  | { readonly kind: 'enum'; readonly values: readonly string[] }
  | { readonly kind: 'signal' }
  | { readonly kind: 'lm' }
  | Custom<unknown>;

/** A language model that can follow the hypotheses of another model's decoding (shallow fusion: generate()'s `lm`). */
export interface FusionLM {
  /** A session over `batch` rows, each starting from the language model's own start (its bos); `vocab` is its vocabulary size. */
  lmSession(batch: number): DecodeSession & { close(): void };
}

interface Custom<T> {
  readonly kind: 'custom';
  readonly what: string;
  readonly test: (v: unknown) => boolean;
  /** Never set: the TypeScript type of the option's value. */
  readonly type?: T;
}

interface OptionSpec {
  readonly type: OptionType;
  readonly default?: number | string | boolean;
  /**
   * The decode statement's attribute for it; for `strategy`, the bare flags that choose one and the
   * attributes whose presence chooses one (`beam = K`).
   */
  readonly statement?: string | { readonly flags: Readonly<Record<string, string>>; readonly valued: readonly string[] };
  /** The strategies it applies to (generate() options): given with another strategy, it is an error. */
  readonly strategies?: readonly DecodeStrategy[];
  /** In a spec, the attribute may also be a token string of the fed input's vocabulary; what it defaults to there. */
  readonly token?: string;
  readonly doc: string;
}

const int = (min: number, max: number) => ({ kind: 'int', min, max }) as const;
const bool = { kind: 'bool' } as const;
/** An object that is not an array (an options object, a rename map). */
function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
const custom = <T>(what: string, test: (v: unknown) => boolean): Custom<T> => ({ kind: 'custom', what, test });

const STRATEGIES = ['greedy', 'beam', 'sample'] as const;
export type DecodeStrategy = (typeof STRATEGIES)[number];

export const GENERATE_OPTIONS = {
  /** 'greedy' (default), 'beam' or 'sample'. */
  strategy: { type: { kind: 'enum', values: STRATEGIES }, default: 'greedy', statement: { flags: { greedy: 'argmax at each step', sample: 'sample from the distribution' }, valued: ['beam'] }, doc: 'argmax at each step, beam search, or sampling' },
  /** Beam width K per input row (default 4, at most 256; strategy 'beam' only). */
  beam: { type: int(1, MAX_BEAM), default: 4, statement: 'beam', strategies: ['beam'], doc: 'beam width' },
  /** Most tokens generated per row, eos included (default 50, at most 65536). */
  maxLen: { type: int(1, MAX_GENERATE_LEN), default: 50, statement: 'max_len', doc: 'most tokens generated' },
  /** Start token (default 0): an id of the fed input's vocabulary. */
  bos: { type: int(0, MAX_TOKEN), default: 0, statement: 'bos', token: "the vocabulary's bos", doc: 'start token id' },
  /** End token (default none: every row runs to maxLen). */
  eos: { type: int(0, MAX_TOKEN), statement: 'eos', token: "the vocabulary's eos", doc: 'end token id' },
  /** Sampling temperature (default 1; strategy 'sample' only). */
  temperature: { type: { kind: 'float', minExclusive: 0 }, default: 1, statement: 'temperature', strategies: ['sample'], doc: 'sampling temperature' },
  /** Sample among the topK most likely tokens (default all; strategy 'sample' only). */
  topK: { type: int(1, 1_048_576), statement: 'top_k', strategies: ['sample'], doc: 'sample among the k most likely' },
  /** Seed of the sampling PRNG (default 0; strategy 'sample' only). */
  seed: { type: int(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER), default: 0, strategies: ['sample'], doc: 'seed of the sampling PRNG' },
  /** Rank finished beam hypotheses by score / length (default false; strategy 'beam' only). */
  lengthNormalize: { type: bool, default: false, strategies: ['beam'], doc: 'rank finished beam hypotheses by score / length' },
  /** Also return the N best finished beam hypotheses per row (strategy 'beam' only; at most the beam width). */
  nBest: { type: int(1, MAX_BEAM), strategies: ['beam'], doc: 'the N best finished beam hypotheses' },
  /** Return the attention weights of each returned hypothesis (default false). */
  attention: { type: bool, default: false, doc: 'return the attention weights' },
  /** Aborts decoding between steps with an Error named 'AbortError'. */
  signal: { type: { kind: 'signal' }, doc: 'aborts decoding between steps' },
  /**
   * Shallow fusion: a language model over the same vocabulary (an n-gram model or any nnc language
   * model); every candidate scores log p_model + lmWeight · log p_lm + lengthBonus (docs/seq2seq.md).
   */
  lm: { type: { kind: 'lm' }, doc: 'a language model fused into the scores' },
  /** λ, the weight of the language model's log-probability (default 1; only with `lm`). */
  lmWeight: { type: { kind: 'float' }, default: 1, doc: "the weight of the language model's log-probability" },
  /** β, added to the score of every generated token (default 0). */
  lengthBonus: { type: { kind: 'float' }, default: 0, doc: 'added to the score of every generated token' },
} as const satisfies Readonly<Record<string, OptionSpec>>;

const BACKENDS = ['auto', 'wasm', 'cpu', 'webasm', 'gpu', 'webgpu', 'onnxruntime', 'onnxruntime-web'] as const satisfies readonly BackendOption[];

/** createModel()'s options (and serve()'s, less `worker`). */
export const CREATE_OPTIONS = {
  /**
   * Which backend runs the kernels; 'auto' (default) picks the best that works, falling back to 'cpu'.
   * 'onnxruntime' runs the model's ONNX graphs on ONNX Runtime instead (onnxruntime-node in Node,
   * onnxruntime-web elsewhere; optional peer dependencies; docs/onnx.md); 'onnxruntime-web' on
   * onnxruntime-web's WebAssembly execution provider anywhere. Never chosen by 'auto'.
   */
  backend: { type: { kind: 'enum', values: BACKENDS }, doc: 'the backend' },
  /** The gpu.js module (or its GPU class), if it cannot be imported from where the generated module lives. */
  gpu: { type: custom<unknown>("gpu.js's GPU class or module", () => true), doc: 'gpu.js' },
  /**
   * `wasm`: threads that share large GEMMs (default: the machine's cores, at most 4; 1 = none; at most the machine's cores). Needs shared memory: Node, or a cross-origin-isolated page.
   * `onnxruntime`: ONNX Runtime's intra-op threads (default: its own, the cores).
   * `onnxruntime-web`: its env.wasm.numThreads, one setting for the page (default: its own).
   */
  threads: { type: int(1, Number.MAX_SAFE_INTEGER), doc: 'threads' },
  /**
   * Run the model off the calling thread, with the same API: `true` starts a Web Worker (a worker
   * thread in Node) that loads the generated module by its URL; in a bundled browser app pass a
   * Worker you made whose script calls `serve(module)` from nnc/runtime (README, "A page that never
   * blocks").
   */
  worker: { type: custom<boolean | ModelWorker>('true, false or a Worker whose script calls serve(module)', (v) => typeof v === 'boolean' || (typeof v === 'object' && v !== null && typeof (v as ModelWorker).postMessage === 'function')), doc: 'run the model in a worker' },
  /** The onnxruntime-node or onnxruntime-web module, for backends 'onnxruntime' and 'onnxruntime-web', if it cannot be imported from where nnc or the generated module lives (in a page it never can: pass it). */
  onnxruntime: { type: custom<unknown>('the onnxruntime-node or onnxruntime-web module', () => true), doc: 'onnxruntime-node or onnxruntime-web' },
  /** nnc's ONNX exporter (import * as exporter from 'nnc/onnx'), for the onnxruntime backends, if the 'nnc' package cannot be imported from where nnc or the generated module lives (in a page it never can: pass it). */
  exporter: { type: custom<unknown>("nnc's ONNX exporter (the nnc/onnx module)", () => true), doc: "nnc's ONNX exporter" },
  /** Accept NaN and ±Infinity in `vectors` inputs (by default an error naming the input, row, step and feature); results then differ between backends. */
  allowNonFinite: { type: bool, doc: 'accept non-finite inputs' },
} as const satisfies Readonly<Record<string, OptionSpec>>;

/** loadWeights()'s options. */
export const LOAD_OPTIONS = {
  /**
   * Renames the checkpoint's tensors before they are matched to the model's weights: a map from the
   * checkpoint's names to the model's (`{ 'module.emb.weight': 'embedding0.weight' }`; null skips a
   * tensor), or a function of the name that returns the model's name, null to skip the tensor, or
   * undefined to keep the name. Names it leaves alone still match as usual.
   */
  rename: {
    type: custom<Readonly<Record<string, string | null>> | ((name: string) => string | null | undefined)>('a { checkpoint name: model name } object or a function', (v) => typeof v === 'function' || (isPlainObject(v) && [Object.prototype, null].includes(Object.getPrototypeOf(v)))),
    doc: 'renames checkpoint tensors',
  },
  /** Load NaN and ±Infinity weights instead of refusing them (default false). */
  allowNonFinite: { type: bool, doc: 'accept non-finite weights' },
  /** URL, Response, Blob and stream sources: called as bytes arrive; `total` is undefined while unknown, and the last call has loaded === total. */
  onProgress: { type: custom<(loaded: number, total: number | undefined) => void>('a function (loaded, total) => void', (v) => typeof v === 'function'), doc: 'reports download progress' },
  /** URL, Response, Blob and stream sources: stops the download (an AbortSignal). */
  signal: { type: { kind: 'signal' }, doc: 'stops the download' },
} as const satisfies Readonly<Record<string, OptionSpec>>;

type Table = Readonly<Record<string, OptionSpec>>;
type ValueOf<T extends OptionType> = T extends { kind: 'int' | 'float' } ? number
  : T extends { kind: 'bool' } ? boolean
  : T extends { kind: 'enum'; values: readonly (infer V)[] } ? V
  : T extends Custom<infer C> ? C
  : T extends { kind: 'lm' } ? FusionLM
  : AbortSignal;
/** The options a table declares, each optional, typed by its declaration (and documented by it). */
type OptionsOf<O extends Table> = { -readonly [K in keyof O]?: ValueOf<O[K]['type']> };

type Options = typeof GENERATE_OPTIONS;
export type OptionName = keyof Options;

/** The options of generate() / stream(). Each defaults to the spec's decode statement, then to the value in its description. */
export type GenerateOptions = OptionsOf<Options>;
/** createModel()'s options. */
export type CreateOptions = OptionsOf<typeof CREATE_OPTIONS>;
/** loadWeights()'s options. */
export type LoadOptions = OptionsOf<typeof LOAD_OPTIONS>;

type StatementOption = { [K in OptionName]: Options[K] extends { statement: unknown } ? K : never }[OptionName];
/** The values a spec's `decode` statement sets (recorded in the module's manifest). */
export type DecodeDefaults = Pick<GenerateOptions, StatementOption>;

/** Options after defaults are applied and everything is validated. */
export type ResolvedOptions = { [K in OptionName]: Options[K] extends { default: unknown } ? ValueOf<Options[K]['type']> : ValueOf<Options[K]['type']> | undefined };

export const OPTION_NAMES = Object.keys(GENERATE_OPTIONS) as OptionName[];

/** A value as it appears in error messages: strings quoted, so '5' and 5 read differently. */
export function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  if (v === null || v === undefined || typeof v === 'boolean' || typeof v === 'symbol') return String(v);
  if (typeof v === 'function') return 'a function';
  const kind = Object.prototype.toString.call(v).slice(8, -1);
  if (kind === 'Array' || kind === 'Object') {
    try {
      const s = JSON.stringify(v);
      if (s !== undefined) return s.length <= 60 ? s : `${s.slice(0, 57)}...`;
    } catch {
      /* cyclic: fall through */
    }
  }
  return `a ${kind}`;
}


/** "`who` is unknown (did you mean 'x'?); `what` are …": the nearest known name when one is close. */
function unknown(who: string, name: string, known: readonly string[], what: string): string {
  const near = didYouMean(name, known);
  return `${who} is unknown${near ? ` (did you mean '${near}'?)` : ''}; ${what} are ${known.join(', ')}`;
}

/** Throws unless `value` is what `type` declares (`max`: a tighter bound for an int, `why` its reason). */
function checkValue(who: string, type: OptionType, value: unknown, max = type.kind === 'int' ? type.max : 0, why = ''): void {
  switch (type.kind) {
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < type.min || value > max) {
        const want = type.min === Number.MIN_SAFE_INTEGER ? 'a safe integer' : max === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${type.min}` : `an integer in [${type.min}, ${max}]`;
        throw new NncError(`${who} must be ${want}${why}, got ${show(value)}`);
      }
      return;
    case 'float':
      if (typeof value !== 'number' || !Number.isFinite(value) || (type.minExclusive !== undefined && value <= type.minExclusive)) {
        throw new NncError(`${who} must be a finite number${type.minExclusive !== undefined ? ` > ${type.minExclusive}` : ''}, got ${show(value)}`);
      }
      return;
    case 'bool':
      if (typeof value !== 'boolean') throw new NncError(`${who} must be a boolean, got ${show(value)}`);
      return;
    case 'enum': {
      if (type.values.includes(value as string)) return;
      const near = typeof value === 'string' ? didYouMean(value, type.values) : undefined;
      throw new NncError(`${who} must be one of ${type.values.map((x) => `'${x}'`).join(', ')}, got ${show(value)}${near ? ` (did you mean '${near}'?)` : ''}`);
    }
    case 'signal':
      if (typeof value !== 'object' || value === null || typeof (value as { aborted?: unknown }).aborted !== 'boolean') throw new NncError(`${who} must be an AbortSignal, got ${show(value)}`);
      return;
    case 'lm':
      if (typeof value !== 'object' || value === null || typeof (value as Partial<FusionLM>).lmSession !== 'function') {
        throw new NncError(`${who} must be a language model (an n-gram model or an nnc language model, as createModel() returns it), got ${show(value)}`);
      }
      return;
    case 'custom':
      if (!type.test(value)) throw new NncError(`${who} must be ${type.what}, got ${show(value)}`);
  }
}

/**
 * Checks the options `fn` (createModel, loadWeights, serve) was given against its table: an object
 * (or nothing), every name declared (an unknown one is an error naming the nearest known one), every
 * value of its declared type (undefined counts as not given). `except` names options `fn` does not
 * take although the table has them (serve() and `worker`).
 */
export function checkOptions<O extends Table>(fn: string, table: O, options: unknown, except: readonly (keyof O & string)[] = []): OptionsOf<O> {
  if (options === undefined || options === null) return {};
  if (!isPlainObject(options)) throw new NncError(`${fn} expects an options object, got ${show(options)}`);
  const names = Object.keys(table).filter((n) => !except.includes(n));
  for (const [k, value] of Object.entries(options)) {
    if (!names.includes(k)) {
      const why = except.includes(k) ? `${fn} option '${k}' does not apply here` : unknown(`${fn} option '${k}'`, k, names, 'the options');
      throw new NncError(why);
    }
    if (value !== undefined) checkValue(`${fn} option '${k}'`, table[k]!.type, value);
  }
  return options as OptionsOf<O>;
}

/** Token ids the options may name: bos is fed to the input (below `inputVocab`), eos is compared with the output's ids (below `vocab`). */
export interface VocabBounds {
  readonly vocab?: number;
  readonly inputVocab?: number;
  /** The fed input's name, for messages. */
  readonly input?: string;
}

/**
 * Applies `opts`, then the spec's decode statement values `defaults`, then each option's default,
 * validating every value against its declaration (and bos and eos against the vocabularies).
 * Options that cannot all hold are errors too: an option the caller gives for a strategy other
 * than the one in effect (the caller's, else the decode statement's, else greedy) — `beam: 4`
 * with `strategy: 'greedy'`, `temperature` without sampling — and `nBest` above the beam width.
 * Throws an NncError naming the option, the expected and the actual value.
 */
export function resolveOptions(opts?: GenerateOptions | null, defaults?: DecodeDefaults | null, bounds: VocabBounds = {}): ResolvedOptions {
  if (opts != null && !isPlainObject(opts)) throw new NncError(`generate options must be an object, got ${show(opts)}`);
  if (defaults != null && !isPlainObject(defaults)) throw new NncError(`decode defaults must be an object, got ${show(defaults)}`);
  for (const [k, b] of [['vocab', bounds.vocab], ['inputVocab', bounds.inputVocab]] as const) {
    if (b !== undefined && !(Number.isInteger(b) && b >= 1)) throw new NncError(`decode: ${k} must be an integer ≥ 1, got ${show(b)}`);
  }
  const o = (opts ?? {}) as Record<string, unknown>;
  const d = (defaults ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!Object.hasOwn(GENERATE_OPTIONS, k)) throw new NncError(unknown(`generate option '${k}'`, k, OPTION_NAMES, 'the options'));
  }
  const statementNames = OPTION_NAMES.filter((n) => (GENERATE_OPTIONS[n] as OptionSpec).statement !== undefined);
  for (const k of Object.keys(d)) {
    if (!(statementNames as string[]).includes(k)) throw new NncError(unknown(`decode default '${k}'`, k, statementNames, 'the defaults'));
  }
  const out: Record<string, unknown> = {};
  for (const name of OPTION_NAMES) {
    const spec: OptionSpec = GENERATE_OPTIONS[name];
    const [value, who] = o[name] !== undefined ? [o[name], `generate option '${name}'`] : d[name] !== undefined ? [d[name], `decode default '${name}'`] : [undefined, ''];
    if (value === undefined) {
      out[name] = spec.default;
      continue;
    }
    if (name === 'bos' && bounds.inputVocab !== undefined) {
      checkValue(who, spec.type, value, Math.min(MAX_TOKEN, bounds.inputVocab - 1), ` (bos is fed to ${bounds.input ? `input '${bounds.input}'` : 'the model'}, whose vocab = ${bounds.inputVocab})`);
    } else if (name === 'eos' && bounds.vocab !== undefined) {
      checkValue(who, spec.type, value, Math.min(MAX_TOKEN, bounds.vocab - 1), ` (the model's output has ${bounds.vocab} classes)`);
    } else checkValue(who, spec.type, value);
    out[name] = value;
  }
  if (o['lmWeight'] !== undefined && out['lm'] === undefined) throw new NncError(`generate option 'lmWeight' weighs a language model: give it with 'lm'`);
  const strategy = out['strategy'] as DecodeStrategy;
  const from = o['strategy'] !== undefined ? '' : d['strategy'] !== undefined ? " (the spec's decode statement)" : ' (the default)';
  for (const name of OPTION_NAMES) {
    const only = (GENERATE_OPTIONS[name] as OptionSpec).strategies;
    if (o[name] === undefined || only === undefined || only.includes(strategy)) continue;
    const fix = o['strategy'] !== undefined ? `drop '${name}', or use strategy ${only.map((x) => `'${x}'`).join(' or ')}` : `pass strategy: '${only[0]}', or drop '${name}'`;
    throw new NncError(`generate option '${name}' applies to strategy ${only.map((x) => `'${x}'`).join(' or ')}, but the strategy is ${show(strategy)}${from}: ${fix}`);
  }
  const nBest = out['nBest'] as number | undefined;
  const beam = out['beam'] as number;
  if (nBest !== undefined && nBest > beam) {
    throw new NncError(`generate option 'nBest' (${nBest}) is more than the beam width (${beam}${o['beam'] !== undefined ? '' : d['beam'] !== undefined ? ", the spec's decode statement" : ', the default'}): a beam of ${beam} keeps ${beam} hypotheses per row; use nBest ≤ beam, or beam: ${nBest}`);
  }
  return out as ResolvedOptions;
}

/** Per decode statement attribute that belongs to some strategies only (`temperature`: sample), those strategies. */
export function decodeAttributeStrategies(): Map<string, readonly DecodeStrategy[]> {
  const m = new Map<string, readonly DecodeStrategy[]>();
  const choosing: readonly string[] = GENERATE_OPTIONS.strategy.statement.valued;
  for (const name of OPTION_NAMES) {
    const spec = GENERATE_OPTIONS[name] as OptionSpec;
    // `beam = K` chooses the strategy itself (two strategies at once are E0413 already)
    if (typeof spec.statement === 'string' && spec.strategies && !choosing.includes(spec.statement)) m.set(spec.statement, spec.strategies);
  }
  return m;
}

/** A decode statement's attributes (as the compiler resolved them) as generate() defaults. */
export function decodeDefaults(attrs: Readonly<Record<string, number | string | boolean | undefined>>): DecodeDefaults {
  const out: Record<string, unknown> = {};
  for (const name of OPTION_NAMES) {
    const st = (GENERATE_OPTIONS[name] as OptionSpec).statement;
    if (st === undefined) continue;
    if (typeof st === 'string') {
      if (attrs[st] !== undefined) out[name] = attrs[st];
      continue;
    }
    // strategy: a flag, or `beam = K`
    out[name] = Object.keys(st.flags).find((fl) => attrs[fl] === true) ?? st.valued.find((a) => attrs[a] !== undefined) ?? GENERATE_OPTIONS.strategy.default;
  }
  return out as DecodeDefaults;
}

/** One attribute of the decode statement: `token`, it may also be a token string of the fed input's vocabulary. */
export interface StatementAttribute {
  readonly name: string;
  readonly type: OptionType;
  readonly default?: number | string | boolean;
  readonly token?: true;
  readonly doc: string;
}

/**
 * The decode statement's attributes, in the compiler's schema terms (src/layers/blocks.schema.ts),
 * with the options' defaults — except where writing the attribute at all chooses the strategy
 * (`beam = K`), and the strategy flags, which are false unless written.
 */
export function decodeStatementAttributes(): StatementAttribute[] {
  const attrs: StatementAttribute[] = [];
  const st = GENERATE_OPTIONS.strategy.statement;
  for (const name of OPTION_NAMES) {
    const spec = GENERATE_OPTIONS[name] as OptionSpec;
    const a = spec.statement;
    if (a === undefined) continue;
    if (typeof a !== 'string') for (const [fl, doc] of Object.entries(a.flags)) attrs.push({ name: fl, type: { kind: 'bool' }, default: false, doc });
    else {
      attrs.push({
        name: a, type: spec.type, ...(spec.default !== undefined && !(st.valued as readonly string[]).includes(a) ? { default: spec.default } : {}),
        ...(spec.token !== undefined ? { token: true } : {}),
        doc: spec.token !== undefined ? `${spec.doc}, or a token string of the fed input's vocabulary (default: ${spec.token})` : spec.doc,
      });
    }
  }
  return attrs;
}
