/**
 * Vocabulary files, read by the compiler (docs/text.md): what `input x: tokens(vocab = "file")`
 * names. Recognises nnc's own format (written by `nnc vocab`), a JSON list of tokens, a JSON map
 * token → id, a text file with one token per line, and a Hugging Face tokenizer.json. Returns the
 * VocabData written into the generated module, or a problem for the checker to report at the right
 * place. Pure: the caller reads the files.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { SPECIAL_ROLES, type SpecialIds, type SpecialRole, type VocabData } from '../runtime/text/vocab.ts';

/** What the spec's input declaration says about its vocabulary (each optional). */
export interface VocabRequest {
  readonly level?: 'char' | 'word';
  readonly lower?: boolean;
  readonly trim?: boolean;
  /** Special token strings by role. */
  readonly specials: Partial<Record<SpecialRole, string>>;
}

/** A problem with a vocabulary, and which part of the declaration it is about. */
export interface VocabProblem {
  readonly code: 'E0602' | 'E0603' | 'E0604';
  /** 'vocab' (the file), 'level', or a special role. */
  readonly at: 'vocab' | 'level' | SpecialRole;
  readonly message: string;
  readonly suggestion?: string;
}

/** nnc's vocabulary file format (`nnc vocab`). */
export interface NncVocabFile {
  nnc: 'vocab';
  level: 'char' | 'word';
  lower?: boolean;
  trim?: boolean;
  replace?: Record<string, string>;
  specials?: Partial<Record<SpecialRole, string>>;
  tokens: string[];
}

type Parsed =
  | { kind: 'list'; tokens: string[]; level?: 'char' | 'word'; lower?: boolean; trim?: boolean; replace?: Record<string, string>; specials: Partial<Record<SpecialRole, string>> }
  | { kind: 'hf'; json: Record<string, unknown> };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function malformed(file: string, why: string, suggestion?: string): VocabProblem {
  return { code: 'E0602', at: 'vocab', message: `vocabulary file '${file}' ${why}`, ...(suggestion ? { suggestion } : {}) };
}

const FORMATS = 'a vocabulary is a JSON list of tokens, a JSON object token → id, one token per line (.txt), nnc vocab output, or a Hugging Face tokenizer.json';

function parse(file: string, text: string): Parsed | VocabProblem {
  if (/\.txt$/i.test(file)) {
    const lines = text.replace(/\r\n/g, '\n').split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    if (lines.length === 0) return malformed(file, 'is empty', FORMATS);
    return { kind: 'list', tokens: lines, specials: {} };
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return malformed(file, `is not valid JSON: ${(e as Error).message}`, FORMATS);
  }
  if (Array.isArray(v)) {
    const bad = v.findIndex((t) => typeof t !== 'string');
    if (bad >= 0) return malformed(file, `is a list, but entry ${bad} is ${JSON.stringify(v[bad])}, not a string`, 'a list vocabulary holds the token strings in id order');
    if (v.length === 0) return malformed(file, 'is an empty list', FORMATS);
    return { kind: 'list', tokens: v as string[], specials: {} };
  }
  if (!isObject(v)) return malformed(file, `holds ${JSON.stringify(v)}`, FORMATS);
  if (v['nnc'] === 'vocab') {
    const f = v as Partial<NncVocabFile>;
    if (f.level !== 'char' && f.level !== 'word') return malformed(file, `has level ${JSON.stringify(f.level)}; expected "char" or "word"`);
    if (!Array.isArray(f.tokens) || f.tokens.some((t) => typeof t !== 'string') || f.tokens.length === 0) return malformed(file, "has no 'tokens' list of strings");
    for (const k of ['lower', 'trim'] as const) if (f[k] !== undefined && typeof f[k] !== 'boolean') return malformed(file, `has ${k} = ${JSON.stringify(f[k])}; expected true or false`);
    if (f.replace !== undefined && (!isObject(f.replace) || Object.entries(f.replace).some(([k, r]) => typeof r !== 'string' || k === ''))) return malformed(file, "has a 'replace' that is not an object of non-empty strings to strings");
    const specials: Partial<Record<SpecialRole, string>> = {};
    if (f.specials !== undefined) {
      if (!isObject(f.specials)) return malformed(file, "has 'specials' that is not an object");
      for (const [role, tok] of Object.entries(f.specials)) {
        if (!(SPECIAL_ROLES as readonly string[]).includes(role)) return malformed(file, `has a special token role '${role}'; the roles are ${SPECIAL_ROLES.join(', ')}`);
        if (typeof tok !== 'string') return malformed(file, `has special ${role} = ${JSON.stringify(tok)}, not a string`);
        specials[role as SpecialRole] = tok;
      }
    }
    return { kind: 'list', tokens: f.tokens, level: f.level, ...(f.lower !== undefined ? { lower: f.lower } : {}), ...(f.trim !== undefined ? { trim: f.trim } : {}), ...(f.replace ? { replace: f.replace } : {}), specials };
  }
  if (isObject(v['model']) && typeof v['model']['type'] === 'string') return { kind: 'hf', json: v };
  // token → id
  const entries = Object.entries(v);
  if (entries.length === 0) return malformed(file, 'is an empty object', FORMATS);
  const tokens = new Array<string | undefined>(entries.length);
  for (const [tok, id] of entries) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= entries.length) {
      return malformed(file, `maps ${JSON.stringify(tok)} to ${JSON.stringify(id)}; a token → id object needs the ids 0 … ${entries.length - 1}, each once`, FORMATS);
    }
    if (tokens[id] !== undefined) return malformed(file, `maps both ${JSON.stringify(tokens[id])} and ${JSON.stringify(tok)} to id ${id}`);
    tokens[id] = tok;
  }
  return { kind: 'list', tokens: tokens as string[], specials: {} };
}

/**
 * Builds the vocabulary an input declares from its file's text. `readSibling` reads a file next to
 * it (tokenizer_config.json), or returns undefined when there is none.
 */
export function loadVocab(file: string, text: string, req: VocabRequest, readSibling: (name: string) => string | undefined): VocabData | VocabProblem {
  const p = parse(file, text);
  if ('code' in p) return p;
  if (p.kind === 'hf') {
    if (req.level !== undefined) {
      return { code: 'E0604', at: 'level', message: `'${file}' is a Hugging Face tokenizer, which decides how text is split itself; level = ${req.level} does not apply`, suggestion: 'remove level' };
    }
    for (const k of ['lower', 'trim'] as const) {
      if (req[k] !== undefined) return { code: 'E0604', at: 'vocab', message: `'${file}' is a Hugging Face tokenizer, whose normalizer decides ${k === 'lower' ? 'lower-casing' : 'whitespace'}; ${k} does not apply`, suggestion: `remove ${k}` };
    }
    let config: object | undefined;
    const cfgText = readSibling('tokenizer_config.json');
    if (cfgText !== undefined) {
      try {
        const c: unknown = JSON.parse(cfgText);
        if (isObject(c)) config = c;
      } catch {
        return malformed(file, "has a tokenizer_config.json next to it that is not valid JSON");
      }
    }
    let tok: Tokenizer;
    try {
      tok = new Tokenizer(p.json, config ?? {});
    } catch (e) {
      return malformed(file, `is not a tokenizer that @huggingface/tokenizers can load: ${(e as Error).message}`);
    }
    const vocab = tok.get_vocab(true);
    let size = 0;
    for (const id of vocab.values()) size = Math.max(size, id + 1);
    if (size === 0) return malformed(file, 'has an empty vocabulary');
    const specials: Record<string, number> = {};
    for (const role of SPECIAL_ROLES) {
      const s = req.specials[role];
      if (s === undefined) continue;
      const id = vocab.get(s);
      if (id === undefined) return { code: 'E0603', at: role, message: `${role} = ${JSON.stringify(s)} is not a token of '${file}'` };
      specials[role] = id;
    }
    return { kind: 'hf', tokenizer: p.json, ...(config ? { config } : {}), size, specials };
  }
  const level = req.level ?? p.level;
  if (level === undefined) {
    return { code: 'E0604', at: 'vocab', message: `vocabulary file '${file}' does not say how text is split into its tokens`, suggestion: 'add level = char (one token per character) or level = word to the input' };
  }
  if (req.level !== undefined && p.level !== undefined && req.level !== p.level) {
    return { code: 'E0604', at: 'level', message: `level = ${req.level}, but '${file}' is a ${p.level}-level vocabulary`, suggestion: `write level = ${p.level}, or remove level` };
  }
  const ids = new Map<string, number>();
  p.tokens.forEach((t, i) => {
    if (!ids.has(t)) ids.set(t, i);
  });
  const specials: { -readonly [K in keyof SpecialIds]: number } = {};
  for (const role of SPECIAL_ROLES) {
    const s = req.specials[role] ?? p.specials[role];
    if (s === undefined) continue;
    const id = ids.get(s);
    if (id === undefined) {
      const fromFile = req.specials[role] === undefined;
      if (fromFile) return malformed(file, `declares ${role} = ${JSON.stringify(s)}, which is not one of its tokens`);
      return { code: 'E0603', at: role, message: `${role} = ${JSON.stringify(s)} is not a token of '${file}'`, suggestion: `name one of its ${p.tokens.length} tokens, e.g. ${JSON.stringify(p.tokens[0])}` };
    }
    specials[role] = id;
  }
  return {
    kind: level,
    tokens: p.tokens,
    lower: req.lower ?? p.lower ?? false,
    trim: req.trim ?? p.trim ?? false,
    ...(p.replace ? { replace: p.replace } : {}),
    specials,
  };
}

/** The number of ids of a vocabulary. */
export function vocabSize(v: VocabData): number {
  return v.kind === 'hf' ? v.size : v.tokens.length;
}
