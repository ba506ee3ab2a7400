/**
 * Text ↔ token ids (docs/text.md). A vocabulary is declared in the spec (`input x: tokens(vocab =
 * "file.json", ...)`); the compiler loads and checks it (src/text/load.ts) and writes it into the
 * generated module as a VocabData literal, which this file turns into a TextVocab at run time.
 * Browser-safe: no Node imports. Hugging Face tokenizer.json files run through
 * @huggingface/tokenizers (pure JavaScript, browsers and Node).
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { NncError } from '../errors.ts';

/** The special tokens' ids, where the vocabulary has them. */
export interface SpecialIds {
  readonly pad?: number;
  readonly unk?: number;
  readonly bos?: number;
  readonly eos?: number;
}
export const SPECIAL_ROLES = ['pad', 'unk', 'bos', 'eos'] as const;
export type SpecialRole = (typeof SPECIAL_ROLES)[number];

/** A vocabulary as the compiler writes it into a generated module (JSON data). */
export type VocabData =
  | {
      /** `char`: one token per character (code point); `word`: runs of letters/digits, and each other non-space character. */
      readonly kind: 'char' | 'word';
      /** Token strings by id. */
      readonly tokens: readonly string[];
      /** Lower-case the text first. */
      readonly lower: boolean;
      /** Strip the ends and turn every run of whitespace into one space first. */
      readonly trim: boolean;
      /** Characters (or strings) replaced before lookup, e.g. { "—": "-" }. */
      readonly replace?: Readonly<Record<string, string>>;
      readonly specials: SpecialIds;
    }
  | {
      /** A Hugging Face tokenizer.json (BPE, WordPiece, Unigram, ...). */
      readonly kind: 'hf';
      readonly tokenizer: object;
      /** tokenizer_config.json, when one is next to it. */
      readonly config?: object;
      readonly size: number;
      readonly specials: SpecialIds;
    };

/** Letters, marks, digits and `_` form words; every other non-space character is a token of its own. */
const WORD = /[\p{L}\p{M}\p{N}_]+|[^\s\p{L}\p{M}\p{N}_]/gu;

/** Splits text into word-level tokens (before lookup). */
export function splitWords(text: string): string[] {
  return text.match(WORD) ?? [];
}

/** `'é' (U+00E9)`. */
function showChar(s: string): string {
  const cps = [...s].map((c) => `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`);
  return `${JSON.stringify(s)} (${cps.join(' ')})`;
}

/** One vocabulary: encode text to ids, decode ids to text. */
export class TextVocab {
  readonly data: VocabData;
  /** Number of ids: every id is in [0, size). */
  readonly size: number;
  readonly specials: SpecialIds;
  private readonly ids: Map<string, number> | undefined;
  private readonly hf: Tokenizer | undefined;
  private readonly replacer: ((s: string) => string) | undefined;

  constructor(data: VocabData) {
    this.data = data;
    this.specials = data.specials;
    if (data.kind === 'hf') {
      this.hf = new Tokenizer(data.tokenizer, data.config ?? {});
      this.size = data.size;
      return;
    }
    this.size = data.tokens.length;
    this.ids = new Map();
    data.tokens.forEach((t, i) => {
      if (!this.ids!.has(t)) this.ids!.set(t, i);
    });
    const rep = data.replace;
    if (rep && Object.keys(rep).length > 0) {
      const keys = Object.keys(rep).sort((a, b) => b.length - a.length).map((k) => k.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
      const re = new RegExp(keys.join('|'), 'gu');
      this.replacer = (s) => s.replace(re, (m) => rep[m]!);
    }
  }

  /** `char`, `word` or `hf`. */
  get kind(): VocabData['kind'] {
    return this.data.kind;
  }

  /** The id of a token string, if it is in the vocabulary. */
  id(token: string): number | undefined {
    return this.hf ? this.hf.token_to_id(token) : this.ids!.get(token);
  }

  /** The token string of an id. */
  token(id: number): string {
    if (this.hf) return this.hf.id_to_token(id) ?? `<${id}>`;
    const d = this.data as Extract<VocabData, { kind: 'char' | 'word' }>;
    return d.tokens[id] ?? `<${id}>`;
  }

  /** What the text becomes before it is split: lower-cased, trimmed, characters replaced, as declared. */
  normalize(text: string): string {
    const d = this.data;
    if (d.kind === 'hf') return text;
    let s = this.replacer ? this.replacer(text) : text;
    if (d.lower) s = s.toLowerCase();
    if (d.trim) s = s.trim().replace(/\s+/g, ' ');
    return s;
  }

  /** The token strings of a text, before lookup. */
  pieces(text: string): string[] {
    if (this.hf) return this.hf.tokenize(text);
    const s = this.normalize(text);
    return this.data.kind === 'char' ? [...s] : splitWords(s);
  }

  /**
   * Text → ids. A piece outside the vocabulary becomes the `unk` token if the vocabulary has one;
   * otherwise it is an error that names the piece (and `where`: e.g. "input 'source', row 2").
   */
  encode(text: string, where = 'text'): number[] {
    if (typeof text !== 'string') throw new NncError(`${where}: expected a string, got ${text === null ? 'null' : typeof text}`);
    if (this.hf) return this.hf.encode(text).ids;
    const out: number[] = [];
    const unk = this.specials.unk;
    const pieces = this.pieces(text);
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i]!;
      const id = this.ids!.get(p);
      if (id !== undefined) out.push(id);
      else if (unk !== undefined) out.push(unk);
      else {
        const what = this.data.kind === 'char' ? 'character' : 'word';
        throw new NncError(
          `${where}: ${what} ${showChar(p)} at ${what} ${i} is not in the vocabulary (${this.size} tokens, ${this.data.kind} level) and the vocabulary declares no unk token: ` +
            `remove it, or declare unk = "<token>" on the input so that unknown ${what}s map to it`,
        );
      }
    }
    return out;
  }

  /** Ids → text: pad, bos and eos are left out; char-level tokens are joined as they are, word-level ones with spaces. */
  decode(ids: ArrayLike<number>): string {
    if (this.hf) return this.hf.decode(Array.from(ids), { skip_special_tokens: true });
    const { pad, bos, eos } = this.specials;
    const parts: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (id === pad || id === bos || id === eos) continue;
      parts.push(this.token(id));
    }
    return parts.join(this.data.kind === 'char' ? '' : ' ');
  }

  /** The token strings by id (every id). */
  tokens(): string[] {
    return Array.from({ length: this.size }, (_, i) => this.token(i));
  }
}
