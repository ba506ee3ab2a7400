/**
 * The options of generate() and stream(), declared once: each option's type, limits, default and
 * the `decode` statement attribute that sets it in a spec. Everything else is derived from this
 * table — the GenerateOptions type (its documentation included), the validation of what an app
 * passes (resolveOptions), the defaults a generated module records from its spec's decode statement
 * (decodeDefaults), and the decode statement's schema in the compiler
 * (src/layers/blocks.schema.ts). Pure TypeScript (it imports only the runtime's error class and
 * did-you-mean helper): it runs in browsers and Node.
 */
import type { DecodeSession } from './decode.ts';
import { NncError } from './errors.ts';
import { didYouMean } from './suggest.ts';

/** The widest beam (and the most n-best hypotheses). */
export const MAX_BEAM = 256;
/** The most tokens one generate() call produces per row (`maxLen`, the decode statement's `max_len`). */
export const MAX_GENERATE_LEN = 65_536;
/** The largest token id a decode statement may name (the language's size limit, 2^20, minus 1). */
const MAX_TOKEN = 1_048_575;

type OptionType =
  | { readonly kind: 'int'; readonly min: number; readonly max: number }
  | { readonly kind: 'float'; readonly minExclusive?: number }
  | { readonly kind: 'bool' }
  | { readonly kind: 'enum'; readonly values: readonly string[] }
  | { readonly kind: 'signal' }
  | { readonly kind: 'lm' };

/** A language model that can follow the hypotheses of another model's decoding (shallow fusion: generate()'s `lm`). */
export interface FusionLM {
  /** A session over `batch` rows, each starting from the language model's own start (its bos); `vocab` is its vocabulary size. */
  lmSession(batch: number): DecodeSession & { close(): void };
}

interface OptionSpec {
  readonly type: OptionType;
  readonly default?: number | string | boolean;
  /**
   * The decode statement's attribute for it; for `strategy`, the bare flags that choose one and the
   * attributes whose presence chooses one (`beam = K`).
   */
  readonly statement?: string | { readonly flags: Readonly<Record<string, string>>; readonly valued: readonly string[] };
  /** In a spec, the attribute may also be a token string of the fed input's vocabulary; what it defaults to there. */
  readonly token?: string;
  readonly doc: string;
}

const int = (min: number, max: number) => ({ kind: 'int', min, max }) as const;

export const GENERATE_OPTIONS = {
  /** 'greedy' (default), 'beam' or 'sample'. */
  strategy: { type: { kind: 'enum', values: ['greedy', 'beam', 'sample'] }, default: 'greedy', statement: { flags: { greedy: 'argmax at each step', sample: 'sample from the distribution' }, valued: ['beam'] }, doc: 'argmax at each step, beam search, or sampling' },
  /** Beam width K per input row (default 4, at most 256; used by strategy 'beam'). */
  beam: { type: int(1, MAX_BEAM), default: 4, statement: 'beam', doc: 'beam width' },
  /** Most tokens generated per row, eos included (default 50, at most 65536). */
  maxLen: { type: int(1, MAX_GENERATE_LEN), default: 50, statement: 'max_len', doc: 'most tokens generated' },
  /** Start token (default 0): an id of the fed input's vocabulary. */
  bos: { type: int(0, MAX_TOKEN), default: 0, statement: 'bos', token: "the vocabulary's bos", doc: 'start token id' },
  /** End token (default none: every row runs to maxLen). */
  eos: { type: int(0, MAX_TOKEN), statement: 'eos', token: "the vocabulary's eos", doc: 'end token id' },
  /** Sampling temperature (default 1). */
  temperature: { type: { kind: 'float', minExclusive: 0 }, default: 1, statement: 'temperature', doc: 'sampling temperature' },
  /** Sample among the topK most likely tokens (default all). */
  topK: { type: int(1, 1_048_576), statement: 'top_k', doc: 'sample among the k most likely' },
  /** Seed of the sampling PRNG (default 0). */
  seed: { type: int(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER), default: 0, doc: 'seed of the sampling PRNG' },
  /** Rank finished beam hypotheses by score / length (default false). */
  lengthNormalize: { type: { kind: 'bool' }, default: false, doc: 'rank finished beam hypotheses by score / length' },
  /** Also return the N best finished beam hypotheses per row (strategy 'beam' only; at most 256). */
  nBest: { type: int(1, MAX_BEAM), doc: 'the N best finished beam hypotheses' },
  /** Return the attention weights of each returned hypothesis (default false). */
  attention: { type: { kind: 'bool' }, default: false, doc: 'return the attention weights' },
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

type Options = typeof GENERATE_OPTIONS;
export type OptionName = keyof Options;
type ValueOf<T extends OptionType> = T extends { kind: 'int' | 'float' } ? number
  : T extends { kind: 'bool' } ? boolean
  : T extends { kind: 'enum'; values: readonly (infer V)[] } ? V
  : T extends { kind: 'lm' } ? FusionLM
  : AbortSignal;

export type DecodeStrategy = ValueOf<Options['strategy']['type']>;

/** The options of generate() / stream(). Each defaults to the spec's decode statement, then to the value in its description. */
export type GenerateOptions = { -readonly [K in OptionName]?: ValueOf<Options[K]['type']> };

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

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
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
 * Throws an Error naming the option, the expected and the actual value.
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
    const t = spec.type;
    let max = t.kind === 'int' ? t.max : 0;
    let why = '';
    if (name === 'bos' && bounds.inputVocab !== undefined) {
      max = Math.min(max, bounds.inputVocab - 1);
      why = ` (bos is fed to ${bounds.input ? `input '${bounds.input}'` : 'the model'}, whose vocab = ${bounds.inputVocab})`;
    }
    if (name === 'eos' && bounds.vocab !== undefined) {
      max = Math.min(max, bounds.vocab - 1);
      why = ` (the model's output has ${bounds.vocab} classes)`;
    }
    switch (t.kind) {
      case 'int':
        if (typeof value !== 'number' || !Number.isInteger(value) || value < t.min || value > max) {
          const want = t.min === Number.MIN_SAFE_INTEGER ? 'a safe integer' : `an integer in [${t.min}, ${max}]`;
          throw new NncError(`${who} must be ${want}${why}, got ${show(value)}`);
        }
        break;
      case 'float':
        if (typeof value !== 'number' || !Number.isFinite(value) || (t.minExclusive !== undefined && value <= t.minExclusive)) {
          throw new NncError(`${who} must be a finite number${t.minExclusive !== undefined ? ` > ${t.minExclusive}` : ''}, got ${show(value)}`);
        }
        break;
      case 'bool':
        if (typeof value !== 'boolean') throw new NncError(`${who} must be a boolean, got ${show(value)}`);
        break;
      case 'enum':
        if (!t.values.includes(value as string)) throw new NncError(`${who} must be one of ${t.values.map((x) => `'${x}'`).join(', ')}, got ${show(value)}`);
        break;
      case 'signal':
        if (typeof value !== 'object' || value === null || typeof (value as { aborted?: unknown }).aborted !== 'boolean') throw new NncError(`${who} must be an AbortSignal, got ${show(value)}`);
        break;
      case 'lm':
        if (typeof value !== 'object' || value === null || typeof (value as Partial<FusionLM>).lmSession !== 'function') {
          throw new NncError(`${who} must be a language model (an n-gram model or an nnc language model, as createModel() returns it), got ${show(value)}`);
        }
        break;
    }
    out[name] = value;
  }
  if (o['lmWeight'] !== undefined && out['lm'] === undefined) throw new NncError(`generate option 'lmWeight' weighs a language model: give it with 'lm'`);
  if (out['nBest'] !== undefined && out['strategy'] !== 'beam') throw new NncError(`generate option 'nBest' needs strategy 'beam', got strategy ${show(out['strategy'])}`);
  return out as ResolvedOptions;
}

/** "`who` is unknown (did you mean 'x'?); `what` are …": the nearest known name when one is close. */
function unknown(who: string, name: string, known: readonly string[], what: string): string {
  const near = didYouMean(name, known);
  return `${who} is unknown${near ? ` (did you mean '${near}'?)` : ''}; ${what} are ${known.join(', ')}`;
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
