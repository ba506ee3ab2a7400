/**
 * AST → checked models (resolved.ts). Matches every statement to its kind's schema
 * (src/layers/schemas.ts), validates and defaults attributes, checks the model's structure and gives
 * every layer and block its weight-name path. Reports every problem it finds (never stops at the
 * first) at the most precise span: the value for a bad value, the name for an unknown attribute, the
 * kind for an unknown layer.
 *
 * Names (docs/language.md, "Weight names"): a statement's name is its label, else its kind plus its
 * index among the same-kind siblings in its scope (`lstm0`, `linear1`; labelled siblings count too);
 * `encoder`, `decoder` and `decode` are simply named after their kind. Every block is a scope; a
 * `repeat` adds the copy index (`repeat0.3.residual0.attention0`).
 *
 * Nodes with an empty kind/name/form come from syntax errors that parse() already reported; they are
 * skipped silently here.
 */
import type { Diagnostic } from '../diagnostics/diagnostic.ts';
import { DiagnosticBag } from '../diagnostics/diagnostic.ts';
import type { Span } from '../diagnostics/span.ts';
import { didYouMean } from '../runtime/suggest.ts';
import { decodeAttributeStrategies } from '../runtime/options.ts';
import type { AttrSpec, AttrType, AttrValue, Attrs, KindSchema } from '../layers/schema.ts';
import { INPUT_SCHEMAS, STATEMENT_SCHEMAS } from '../layers/schemas.ts';
import type { FileAst, InputDecl, Item, ModelDecl, OutputDecl, Statement, Value } from './ast.ts';
import type { ResolvedFile, ResolvedInput, ResolvedModel, ResolvedStatement } from './resolved.ts';
import { loadVocab, vocabSize } from '../text/load.ts';
import { SPECIAL_ROLES, TextVocab, type SpecialRole, type VocabData } from '../runtime/text/vocab.ts';
import { checkNgram } from '../ngram/check.ts';

/** Files a spec names (vocabularies), read relative to the spec's folder. */
export interface SpecFiles {
  /** The file's text; throws an Error whose message says why it cannot be read. */
  read(path: string): string;
}

/**
 * A file whose models have more statements than this in all, after expanding every repeat, is
 * refused (E0415): what compiles in seconds (the largest real models have about a thousand).
 */
export const MAX_EXPANDED_STATEMENTS = 10_000;
/** A file with more models than this is refused (E0417): each model is a part of the module of its own. */
export const MAX_MODELS = 1_000;

/** Checker diagnostics reported per file before one E0005. */
export const MAX_CHECK_ERRORS = 50;

/** Values shown in "e.g." fixes, by attribute name. Fallbacks come from the type. */
const EXAMPLE_VALUES: Readonly<Record<string, string>> = {
  hidden: '128',
  dim: '64',
  vocab: '96',
  out: '10',
  count: '4',
  heads: '4',
  beam: '5',
  max_len: '100',
  p: '0.1',
};

function exampleValue(a: AttrSpec): string {
  const known = EXAMPLE_VALUES[a.name];
  if (known !== undefined) return known;
  const t = a.type;
  switch (t.kind) {
    case 'int':
      return String(typeof a.default === 'number' ? a.default : Math.max(t.min ?? 1, 1));
    case 'float':
      return String(typeof a.default === 'number' ? a.default : 0.5);
    case 'bool':
      return 'true';
    case 'enum':
      return t.values[0] ?? 'x';
    case 'string':
      return '"..."';
  }
}

/** `'maximum'`, `2.5`, `"abc"`: a value as it reads in a message. */
function show(v: Value): string {
  switch (v.type) {
    case 'number':
      return v.raw;
    case 'word':
      return `'${v.value}'`;
    case 'string':
      return JSON.stringify(v.value);
  }
}

function list(words: readonly string[]): string {
  return words.join(', ');
}

function rangeText(t: AttrType): string | undefined {
  if (t.kind !== 'int' && t.kind !== 'float') return undefined;
  const exclusive = t.kind === 'float' && t.minExclusive;
  if (t.min !== undefined && t.max !== undefined) return exclusive ? `greater than ${t.min} and at most ${t.max}` : `between ${t.min} and ${t.max}`;
  if (t.min !== undefined) return exclusive ? `greater than ${t.min}` : `at least ${t.min}`;
  if (t.max !== undefined) return `at most ${t.max}`;
  return undefined;
}

function inRange(t: AttrType, n: number): boolean {
  if (t.kind !== 'int' && t.kind !== 'float') return true;
  if (t.min !== undefined && (n < t.min || (t.kind === 'float' && t.minExclusive && n === t.min))) return false;
  if (t.max !== undefined && n > t.max) return false;
  return true;
}

/** A value lost to a syntax error that parse() reported: a missing value, or a malformed number. */
function damaged(v: Value): boolean {
  return (v.type === 'word' && v.value === '') || (v.type === 'number' && Number.isNaN(v.value));
}

/** Does a bare value fit the positional attribute's type (so that it is that attribute's value)? */
function fitsPositional(t: AttrType, v: Value): boolean {
  if (t.kind === 'int' || t.kind === 'float') return v.type === 'number';
  if (t.kind === 'enum') return (v.type === 'word' || v.type === 'string') && t.values.includes(v.value);
  return false;
}

/** Who an attribute message is about, and how to show a fix. */
interface Subject {
  /** `lstm`, `input 'text'` — starts "... hidden must be ...". */
  readonly who: string;
  /** `lstm`, `tokens input` — in "unknown attribute 'x' for ...". */
  readonly kindLabel: string;
  readonly schema: KindSchema;
  /** A complete example statement setting `a` (the fix shown for a missing attribute). */
  example(a: AttrSpec): string;
}

interface Scope {
  /** Where the statements sit: 'model', or the enclosing block's kind. */
  readonly where: string;
  /** Dotted path prefix ('' at model level). */
  readonly prefix: string;
  readonly diags: DiagnosticBag;
}

class Checker {
  /** Statements of the file so far (repeats expanded), and where the current model's began. */
  private expanded = 0;
  private modelStart = 0;
  private expansionReported = false;
  /** The repeat statements being expanded, outermost first (where an oversized expansion is blamed). */
  private readonly repeats: Statement[] = [];

  constructor(private readonly diags: DiagnosticBag, private readonly files?: SpecFiles) {}

  // ---- file and models ---------------------------------------------------------------------------

  file(ast: FileAst): ResolvedFile {
    // (a source too large to read, E0007, has no models either: that is said already)
    if (ast.models.length === 0 && !this.diags.items.some((d) => d.code === 'E0007')) {
      this.diags.error('E0411', 'no model in this file', { file: ast.file, start: 0, end: 0, line: 1, col: 1 }, {
        suggestion: 'a file holds one or more declarations like: model CharLM { input text: tokens(vocab = 96) ... }',
      });
    }
    const seen = new Map<string, ModelDecl>();
    const models: ResolvedModel[] = [];
    const over = ast.models[MAX_MODELS];
    if (over) {
      this.diags.error('E0417', `this file declares more than ${MAX_MODELS} models: this is model ${MAX_MODELS + 1}`, over.nameSpan, {
        suggestion: `a file may declare at most ${MAX_MODELS} models (docs/language.md, Limits): split it into several files`,
      });
      return { file: ast.file, models: [] };
    }
    for (const m of ast.models) {
      if (m.name !== '') {
        const first = seen.get(m.name);
        if (first) {
          this.diags.error('E0410', `model '${m.name}' is declared twice in this file`, m.nameSpan, {
            notes: [{ message: `model '${m.name}' is first declared here`, span: first.nameSpan }],
            suggestion: 'give each model its own name',
          });
        } else seen.set(m.name, m);
      }
      models.push(this.model(m));
    }
    return { file: ast.file, models };
  }

  private model(m: ModelDecl): ResolvedModel {
    this.modelStart = this.expanded;
    const what = m.name ? `model '${m.name}'` : 'this model';
    const inputDecls = m.members.filter((x): x is InputDecl => x.type === 'input');
    const outputDecls = m.members.filter((x): x is OutputDecl => x.type === 'output');
    const statements = m.members.filter((x): x is Statement => x.type === 'statement');

    const inputs = this.inputs(inputDecls);
    for (const o of outputDecls) this.objectKey(o.name, o.nameSpan, 'output');

    for (const extra of outputDecls.slice(1)) {
      this.diags.error('E0407', `${what} declares 'output' twice`, extra.span, {
        notes: [{ message: 'the first output is declared here', span: outputDecls[0]!.span }],
        suggestion: 'a model returns one value: keep one output line',
      });
    }

    const resolved = this.scope(statements, { where: 'model', prefix: '', diags: this.diags });
    const chain = resolved.filter((r) => r.kind !== 'decode');
    const seq2seqModel = statements.some((s) => s.kind === 'encoder' || s.kind === 'decoder');
    // the generated tokens are fed back to the last input: its vocabulary names bos and eos
    const fed = inputs.find((i) => i.decl === inputDecls[seq2seqModel ? 1 : 0]);
    const decodeStmt = resolved.find((r) => r.kind === 'decode');
    const decode = decodeStmt ? this.decodeTokens(decodeStmt, fed) : undefined;
    const ngram = chain.find((r) => r.kind === 'ngram');
    if (ngram) checkNgram(m, ngram, chain, inputs, decode, this.diags);

    // seq2seq structure
    const encoder = statements.find((s) => s.kind === 'encoder');
    const decoder = statements.find((s) => s.kind === 'decoder');
    if (encoder && !decoder) {
      this.diags.error('E0405', 'an encoder needs a decoder { ... } after it', encoder.kindSpan, {
        suggestion: 'add a decoder block after the encoder, or remove the encoder block and keep its layers',
      });
    }
    if (decoder && !encoder) {
      this.diags.error('E0405', 'a decoder needs an encoder { ... } before it', decoder.kindSpan, {
        suggestion: 'add an encoder block before the decoder, or remove the decoder block and keep its layers',
      });
    }
    if (encoder && decoder && decoder.span.start < encoder.span.start) {
      this.diags.error('E0405', 'the decoder must come after the encoder', decoder.kindSpan, {
        notes: [{ message: 'the encoder is here', span: encoder.kindSpan }],
      });
    }
    const seq2seq = encoder !== undefined || decoder !== undefined;

    // inputs: seq2seq takes (source, target), everything else exactly one
    const wanted = seq2seq ? 2 : 1;
    if (inputDecls.length === 0) {
      this.diags.error(
        'E0406',
        seq2seq ? `${what} has no inputs — a seq2seq model needs two, source and target` : `${what} has no input`,
        m.nameSpan,
        {
          suggestion: seq2seq
            ? 'add e.g. input source: tokens(vocab = 8000) and input target: tokens(vocab = 8000)'
            : 'add e.g. input text: tokens(vocab = 96)',
        },
      );
    } else if (inputDecls.length < wanted) {
      this.diags.error('E0406', `a seq2seq model (encoder/decoder) needs two inputs, source and target; ${what} has one`, inputDecls[0]!.span, {
        suggestion: `add the second input after this one, e.g. input target: tokens(vocab = 8000)`,
      });
    } else {
      for (const extra of inputDecls.slice(wanted)) {
        this.diags.error(
          'E0406',
          seq2seq
            ? `a seq2seq model takes exactly two inputs (source, then target); this is a third`
            : `${what} takes exactly one input; this is a second (only seq2seq models, with encoder and decoder blocks, take two)`,
          extra.span,
          { notes: [{ message: 'the first input is declared here', span: inputDecls[0]!.span }] },
        );
      }
    }

    if (!statements.some((s) => s.kind !== 'decode')) {
      this.diags.error('E0412', `${what} has no layers`, m.nameSpan.end > m.nameSpan.start ? m.nameSpan : m.span, {
        suggestion: 'add layers after the input, e.g. embedding 64; lstm 128; linear 96; softmax',
      });
    }

    return {
      decl: m,
      name: m.name,
      inputs,
      ...(outputDecls[0] ? { output: outputDecls[0] } : {}),
      chain,
      ...(decode ? { decode } : {}),
      ...(ngram ? { ngram } : {}),
      span: m.span,
    };
  }

  /**
   * A decode statement's bos and eos as ids: a token string is looked up in the vocabulary of the
   * input the generated tokens are fed to (E0605 when it has none, or lacks the token); not
   * written, they default to that vocabulary's bos and eos.
   */
  private decodeTokens(r: ResolvedStatement, fed: ResolvedInput | undefined): ResolvedStatement {
    const attrs: Record<string, AttrValue | undefined> = { ...r.attrs };
    const written = new Set(r.written);
    for (const role of ['bos', 'eos'] as const) {
      const v = attrs[role];
      if (typeof v === 'string') {
        const item = r.stmt.items.find((it) => it.name === role);
        const at = item?.value.span ?? r.stmt.kindSpan;
        const id = fed?.text ? tokenId(fed.text, v) : undefined;
        if (!fed?.text) {
          this.diags.error('E0605', `decode ${role} = ${JSON.stringify(v)} names a token, but input '${fed?.name ?? '?'}' (which generated tokens are fed to) declares no vocabulary file`, at, {
            suggestion: `write the token's id (${role} = 1), or declare the input's vocabulary: tokens(vocab = "vocab.json")`,
          });
          attrs[role] = undefined;
        } else if (id === undefined) {
          this.diags.error('E0605', `decode ${role} = ${JSON.stringify(v)} is not a token of input '${fed.name}''s vocabulary`, at, {
            suggestion: fed.text.specials[role] !== undefined ? `its ${role} is ${JSON.stringify(tokenString(fed.text, fed.text.specials[role]!))}` : `name one of its tokens, or write an id`,
          });
          attrs[role] = undefined;
        } else attrs[role] = id;
      } else if (!r.written.has(role) && fed?.text?.specials[role] !== undefined) {
        attrs[role] = fed.text.specials[role];
        written.add(role);
      }
    }
    return { ...r, attrs, written };
  }

  /**
   * Input and output names are property names of the objects forward() takes and returns. Every
   * name works as an own property (`constructor`, `toString` too) except `__proto__`, which plain
   * JavaScript (`{ __proto__: x }`, `Object.assign`, `o[k] = v`) treats as the prototype: refused.
   */
  private objectKey(name: string, span: Span, what: 'input' | 'output'): void {
    if (name !== '__proto__') return;
    this.diags.error('E0416', `'__proto__' cannot name an ${what}: in JavaScript it is an object's prototype, not an ordinary property`, span, {
      suggestion: what === 'output' ? 'choose another name, e.g. output proto' : 'choose another name, e.g. input proto: tokens(vocab = 96)',
    });
  }

  private inputs(decls: InputDecl[]): ResolvedInput[] {
    const out: ResolvedInput[] = [];
    const names = new Map<string, InputDecl>();
    for (const d of decls) {
      this.objectKey(d.name, d.nameSpan, 'input');
      if (d.name !== '') {
        const first = names.get(d.name);
        if (first) {
          this.diags.error('E0414', `input '${d.name}' is declared twice`, d.nameSpan, {
            notes: [{ message: `input '${d.name}' is first declared here`, span: first.nameSpan }],
          });
        } else names.set(d.name, d);
      }
      if (d.form === '') continue;
      const schema = INPUT_SCHEMAS.get(d.form);
      if (!schema) {
        const forms = [...INPUT_SCHEMAS.keys()];
        const close = didYouMean(d.form, forms);
        this.diags.error(
          'E0204',
          close ? `unknown input form '${d.form}' — did you mean '${close}'?` : `unknown input form '${d.form}'; an input is ${forms.join(' or ')}`,
          d.formSpan,
          { suggestion: close ? `replace '${d.form}' with '${close}'` : 'write tokens(vocab = V) for integer ids, or vectors(dim = D) for float features' },
        );
        continue;
      }
      const n = d.name || 'x';
      const { attrs } = this.attrs(
        {
          who: `input '${n}'`,
          kindLabel: `${d.form} input`,
          schema,
          example: (a) => `input ${n}: ${d.form}(${a.name} = ${exampleValue(a)})`,
        },
        d.items,
        d.formSpan,
        this.diags,
      );
      const text = schema.kind === 'tokens' ? this.vocabulary(d, attrs) : undefined;
      out.push({ decl: d, name: d.name, form: schema.kind as 'tokens' | 'vectors', attrs: text ? { ...attrs, vocab: vocabSize(text) } : attrs, ...(text ? { text } : {}), span: d.span });
    }
    return out;
  }

  /** Loads the vocabulary file a tokens input names (vocab = "file"); reports what is wrong with it. */
  private vocabulary(d: InputDecl, attrs: Attrs): VocabData | undefined {
    const at = (name: string): Span => d.items.find((it) => it.name === name)?.value.span ?? d.formSpan;
    const file = attrs['vocab'];
    const textAttrs = ['level', 'lower', 'trim', ...SPECIAL_ROLES].filter((a) => attrs[a] !== undefined);
    if (typeof file !== 'string') {
      if (typeof file === 'number' && textAttrs.length > 0) {
        const item = d.items.find((it) => it.name === textAttrs[0] || (it.name === undefined && it.value.type === 'word' && it.value.value === textAttrs[0]));
        this.diags.error('E0604', `${textAttrs[0]} describes a vocabulary file, but input '${d.name}' has vocab = ${file} (token ids only)`, item?.span ?? d.formSpan, {
          suggestion: `name the vocabulary file (vocab = "vocab.json"), or remove ${textAttrs.join(', ')}`,
        });
      }
      return undefined;
    }
    if (!this.files) {
      this.diags.error('E0601', `input '${d.name}' names the vocabulary file ${JSON.stringify(file)}, but this compilation cannot read files`, at('vocab'), {
        suggestion: 'compile the spec from a file (nnc compile), or pass a file reader to compile()',
      });
      return undefined;
    }
    let text: string;
    try {
      text = this.files.read(file);
    } catch (e) {
      this.diags.error('E0601', `cannot read vocabulary file ${JSON.stringify(file)}: ${(e as Error).message}`, at('vocab'), {
        suggestion: 'the path is relative to the .nn file; build a vocabulary with: nnc vocab corpus.txt --level char -o vocab.json',
      });
      return undefined;
    }
    const dir = file.includes('/') ? file.slice(0, file.lastIndexOf('/') + 1) : '';
    const specials: Partial<Record<SpecialRole, string>> = {};
    for (const role of SPECIAL_ROLES) if (typeof attrs[role] === 'string') specials[role] = attrs[role] as string;
    const r = loadVocab(file, text, {
      ...(attrs['level'] !== undefined ? { level: attrs['level'] as 'char' | 'word' } : {}),
      ...(attrs['lower'] !== undefined ? { lower: attrs['lower'] as boolean } : {}),
      ...(attrs['trim'] !== undefined ? { trim: attrs['trim'] as boolean } : {}),
      specials,
    }, (name) => {
      try {
        return this.files!.read(dir + name);
      } catch {
        return undefined;
      }
    });
    if ('code' in r) {
      this.diags.error(r.code, r.message, at(r.at), r.suggestion ? { suggestion: r.suggestion } : {});
      return undefined;
    }
    return r;
  }

  // ---- statements --------------------------------------------------------------------------------

  /** Resolves the statements of one scope, naming each. */
  private scope(stmts: readonly Statement[], scope: Scope): ResolvedStatement[] {
    const out: ResolvedStatement[] = [];
    const kindCount = new Map<string, number>();
    /** name → where it was taken, and whether by a label. */
    const names = new Map<string, { span: Span; label: boolean }>();
    const onlyOnce = new Map<string, Statement>();

    stmts.forEach((stmt, i) => {
      if (stmt.kind === '') return;
      const schema = STATEMENT_SCHEMAS.get(stmt.kind);
      if (!schema) {
        this.unknownKind(stmt, stmts[i - 1], scope);
        return;
      }
      const index = kindCount.get(stmt.kind) ?? 0;
      kindCount.set(stmt.kind, index + 1);

      if (schema.topLevelOnly && scope.where === 'model') {
        const first = onlyOnce.get(stmt.kind);
        if (first) {
          scope.diags.error('E0404', `a model has at most one ${stmt.kind}; this is a second`, stmt.kindSpan, {
            notes: [{ message: `the first ${stmt.kind} is here`, span: first.kindSpan }],
          });
          return;
        }
        onlyOnce.set(stmt.kind, stmt);
      }

      const name = stmt.label ?? (schema.topLevelOnly ? stmt.kind : `${stmt.kind}${index}`);
      const nameSpan = stmt.labelSpan ?? stmt.kindSpan;
      const taken = names.get(name);
      if (taken) {
        const message = stmt.label !== undefined
          ? `label '${name}' is already used in this ${scope.where === 'model' ? 'model' : `${scope.where} block`}`
          : `this ${stmt.kind} is named '${name}' automatically, but a label already uses that name`;
        scope.diags.error('E0409', message, nameSpan, {
          notes: [{ message: `'${name}' is first used here`, span: taken.span }],
          suggestion: 'names must be unique within a block: rename the label',
        });
      } else names.set(name, { span: nameSpan, label: stmt.label !== undefined });

      const r = this.statement(stmt, schema, name, scope);
      if (r) out.push(r);
    });
    return out;
  }

  private unknownKind(stmt: Statement, prev: Statement | undefined, scope: Scope): void {
    const prevSchema = prev ? STATEMENT_SCHEMAS.get(prev.kind) : undefined;
    const kinds = [...STATEMENT_SCHEMAS.keys()];
    const prevPositional = prevSchema?.attrs.find((a) => a.positional);
    if (prev && prevPositional?.type.kind === 'enum' && prevPositional.type.values.includes(stmt.kind) && !stmt.label && prev.items.length === 0) {
      scope.diags.error(
        'E0201',
        `unknown layer '${stmt.kind}' — it is a value of the ${prev.kind} before it, but a bare first value must be on the same line as its kind`,
        stmt.kindSpan,
        { suggestion: `write '${prev.kind} ${stmt.kind}' on one line, or '${prev.kind} ${prevPositional.name} = ${stmt.kind}'` },
      );
    } else if (prev && prevSchema && prevSchema.attrs.some((a) => a.name === stmt.kind) && !stmt.label) {
      scope.diags.error(
        'E0201',
        `unknown layer '${stmt.kind}' — it is an attribute of the ${prev.kind} before it`,
        stmt.kindSpan,
        { suggestion: `items are separated by ',': add a ',' before '${stmt.kind}' to continue the ${prev.kind} statement` },
      );
    } else {
      const close = didYouMean(stmt.kind, kinds);
      scope.diags.error(
        'E0201',
        close ? `unknown layer '${stmt.kind}' — did you mean '${close}'?` : `unknown layer '${stmt.kind}'`,
        stmt.kindSpan,
        { suggestion: close ? `replace '${stmt.kind}' with '${close}'` : `known kinds: ${list(kinds)}` },
      );
    }
    // Still look inside a block with a misspelt kind, so that its errors are reported in this run.
    if (stmt.body) this.scope(stmt.body, { where: stmt.kind, prefix: `${scope.prefix}${stmt.kind}.`, diags: scope.diags });
  }

  private statement(stmt: Statement, schema: KindSchema, name: string, scope: Scope): ResolvedStatement | undefined {
    this.expanded++;
    if (this.expanded > MAX_EXPANDED_STATEMENTS) {
      this.statementBudgetExceeded(stmt);
      return undefined;
    }
    const diags = scope.diags;
    const path = `${scope.prefix}${name}`;
    const isBlock = schema.shape === 'block';
    if (isBlock && stmt.body === undefined) {
      diags.error('E0401', `${stmt.kind} needs a { ... } body`, stmt.kindSpan, {
        suggestion: `write e.g. ${stmt.kind}${stmt.kind === 'repeat' ? ' 2' : ''} { lstm 128 }`,
      });
    }
    if (!isBlock && stmt.body !== undefined) {
      diags.error('E0402', `${stmt.kind} does not take a { ... } body`, stmt.kindSpan, {
        suggestion: 'only encoder, decoder, repeat and residual have bodies; move these layers after it',
      });
    }
    if (schema.topLevelOnly && scope.where !== 'model') {
      diags.error('E0403', `${stmt.kind} can only appear directly inside a model, not inside a ${scope.where} block`, stmt.kindSpan);
    }

    const blockSuffix = isBlock ? ' { ... }' : '';
    const { attrs, written } = this.attrs(
      {
        who: stmt.kind,
        kindLabel: stmt.kind,
        schema,
        example: (a) => `${stmt.kind} ${a.name} = ${exampleValue(a)}${blockSuffix}`,
      },
      stmt.items,
      stmt.kindSpan,
      diags,
    );
    if (stmt.kind === 'decode') this.decodeStrategy(stmt, attrs, written, diags);
    if (schema.family === 'recurrent') this.mergeWithoutBidirectional(stmt, attrs, diags);

    let body: ResolvedStatement[] | undefined;
    let copies: ResolvedStatement[][] | undefined;
    if (isBlock && stmt.body !== undefined) {
      if (stmt.body.length === 0 && !stmt.bodyCut) {
        diags.error('E0412', `this ${stmt.kind} block has no layers`, stmt.kindSpan, { suggestion: `put at least one layer inside: ${stmt.kind}${stmt.kind === 'repeat' ? ' 2' : ''} { ... }` });
      }
      if (stmt.kind === 'repeat') {
        const count = typeof attrs['count'] === 'number' ? attrs['count'] : 1;
        // Copy 0 is checked; the other copies are the same statements with their own paths.
        this.repeats.push(stmt);
        const first = this.scope(stmt.body, { where: stmt.kind, prefix: `${path}.0.`, diags });
        const extra = countStatements(first) * (count - 1);
        if (this.expanded + extra > MAX_EXPANDED_STATEMENTS) {
          this.statementBudgetExceeded(stmt);
          this.expanded = MAX_EXPANDED_STATEMENTS;
        } else this.expanded += extra;
        this.repeats.pop();
        copies = [first];
        if (!this.expansionReported) {
          for (let i = 1; i < count; i++) copies.push(first.map((r) => repath(r, `${path}.0.`, `${path}.${i}.`)));
        }
        body = copies[0] ?? [];
      } else {
        body = this.scope(stmt.body, { where: stmt.kind, prefix: `${path}.`, diags });
      }
    }

    return {
      stmt,
      schema,
      kind: stmt.kind,
      attrs,
      written,
      name,
      path,
      ...(body ? { body } : {}),
      ...(copies ? { copies } : {}),
      span: stmt.span,
    };
  }

  /** E0415 where the file's statements go over the limit. */
  private statementBudgetExceeded(at: Statement): void {
    if (this.expansionReported) return;
    this.expansionReported = true;
    // the model alone when no model before it has a statement
    const what = this.modelStart === 0 ? 'the model' : "this file's models";
    const all = what === 'the model' ? '' : ' in all';
    const suggestion = `a file may have at most ${MAX_EXPANDED_STATEMENTS} layers in all its models, once every repeat is expanded (docs/language.md, Limits)`;
    const blame = this.repeats[0] ?? (at.kind === 'repeat' ? at : undefined);
    if (!blame) {
      this.diags.error('E0415', `${what} ${what === 'the model' ? 'has' : 'have'} more than ${MAX_EXPANDED_STATEMENTS} layers${all}: this is layer ${MAX_EXPANDED_STATEMENTS + 1}`, at.kindSpan, { suggestion });
      return;
    }
    this.diags.error(
      'E0415',
      `this repeat expands ${what} to more than ${MAX_EXPANDED_STATEMENTS} layers${all} (nested repeat counts multiply)`,
      blame.items[0]?.value.span ?? blame.kindSpan,
      { suggestion },
    );
  }

  /** `merge = sum | mean` combines the two directions; with one direction it does nothing (W0517). */
  private mergeWithoutBidirectional(stmt: Statement, attrs: Attrs, diags: DiagnosticBag): void {
    if (attrs['bidirectional'] === true || (attrs['merge'] !== 'sum' && attrs['merge'] !== 'mean')) return;
    const item = stmt.items.find((it) => it.name === 'merge');
    diags.warning('W0517', `merge = ${String(attrs['merge'])} has no effect: this ${stmt.kind} is not bidirectional, so there are no two directions to combine`, item?.span ?? stmt.kindSpan, {
      suggestion: `add bidirectional (${stmt.kind} ${String(attrs['hidden'] ?? 128)}, bidirectional, merge = ${String(attrs['merge'])}), or remove merge = ${String(attrs['merge'])}`,
    });
  }

  /**
   * `decode` picks one of greedy, beam = K, sample, and its attributes that belong to one strategy
   * (`temperature`, `top_k`: sample) go with that strategy — the same rule generate() applies to
   * its options (src/runtime/options.ts).
   */
  private decodeStrategy(stmt: Statement, attrs: Attrs, written: ReadonlySet<string>, diags: DiagnosticBag): void {
    const itemOf = (name: string) => stmt.items.find((it) => (it.name ?? (it.value.type === 'word' ? it.value.value : '')) === name);
    const chosen = ['greedy', 'beam', 'sample'].filter((s) => (s === 'beam' ? written.has('beam') : attrs[s] === true));
    if (chosen.length > 1) {
      diags.error('E0413', `decode takes one strategy, greedy, beam = K or sample; got ${chosen.join(' and ')}`, itemOf(chosen[1]!)?.span ?? stmt.kindSpan, {
        suggestion: `keep only one of ${chosen.join(', ')}`,
      });
      return;
    }
    const strategy = chosen[0] ?? 'greedy';
    for (const [attr, only] of decodeAttributeStrategies()) {
      if (!written.has(attr) || (only as readonly string[]).includes(strategy)) continue;
      diags.error('E0413', `decode ${attr} applies to ${only.map((x) => (x === 'beam' ? 'beam = K' : x)).join(' or ')}, but this decode ${chosen.length ? `chooses ${strategy}` : 'chooses no strategy (greedy)'}`, itemOf(attr)?.span ?? stmt.kindSpan, {
        suggestion: `${chosen.length ? `write ${only[0]} instead of ${strategy === 'beam' ? 'beam = K' : strategy}` : `add ${only[0]} to the decode statement`}, or remove ${attr}`,
      });
    }
  }

  // ---- attributes --------------------------------------------------------------------------------

  /** Validates items against a schema; fills defaults. */
  private attrs(subject: Subject, items: readonly Item[], at: Span, diags: DiagnosticBag): { attrs: Attrs; written: Set<string> } {
    const { schema } = subject;
    const values = new Map<string, AttrValue | undefined>();
    const firstAt = new Map<string, Span>();
    const positional = schema.attrs.find((a) => a.positional);
    const flags = schema.attrs.filter((a) => a.type.kind === 'bool').map((a) => a.name);

    const assign = (spec: AttrSpec, item: Item, value: AttrValue | undefined): void => {
      const first = firstAt.get(spec.name);
      if (first) {
        diags.error('E0304', `${subject.who} ${spec.name} is given twice`, item.nameSpan ?? item.span, {
          notes: [{ message: `${spec.name} is first given here`, span: first }],
          suggestion: `remove one of the two`,
        });
        return;
      }
      firstAt.set(spec.name, item.span);
      values.set(spec.name, value);
    };

    let unknownName = false;
    items.forEach((item, i) => {
      const v = item.value;
      if (item.name === '') {
        // a damaged (non-ASCII) name, already reported: it may have been the required attribute
        unknownName = true;
        return;
      }
      if (item.name !== undefined) {
        const spec = schema.attrs.find((a) => a.name === item.name);
        if (!spec) {
          const meant = this.unknownAttr(subject, item, diags);
          // A misspelt required attribute is not also "missing".
          if (meant && !firstAt.has(meant)) firstAt.set(meant, item.span);
          return;
        }
        assign(spec, item, this.coerce(subject, spec, v, diags));
        return;
      }
      if (damaged(v)) {
        // `linear 0x10`: the malformed number was reported; it still stands for the positional value.
        if (v.type === 'number' && i === 0 && positional && !firstAt.has(positional.name)) firstAt.set(positional.name, item.span);
        return;
      }
      if (i === 0 && positional && fitsPositional(positional.type, v)) {
        assign(positional, item, this.coerce(subject, positional, v, diags));
        return;
      }
      if (v.type === 'word' && flags.includes(v.value)) {
        assign(schema.attrs.find((a) => a.name === v.value)!, item, true);
        return;
      }
      this.badBare(subject, item, i, diags);
      // Count what the user evidently meant as written, so "needs 'hidden'" does not follow.
      const meant = v.type === 'word' ? schema.attrs.find((a) => a.name === v.value) : undefined;
      if (meant && !firstAt.has(meant.name)) firstAt.set(meant.name, item.span);
      else if (i > 0 && positional && fitsPositional(positional.type, v) && !firstAt.has(positional.name)) {
        firstAt.set(positional.name, item.span);
      }
    });

    for (const a of schema.attrs) {
      if (a.required && !firstAt.has(a.name) && !unknownName) {
        diags.error('E0305', `${subject.who} needs '${a.name}' — e.g. ${subject.example(a)}`, at);
      }
    }
    const attrs: Record<string, AttrValue | undefined> = {};
    for (const a of schema.attrs) attrs[a.name] = values.get(a.name) ?? a.default;
    return { attrs, written: new Set(firstAt.keys()) };
  }

  /** Reports an unknown attribute name; returns the close match, if any. */
  private unknownAttr(subject: Subject, item: Item, diags: DiagnosticBag): string | undefined {
    const names = subject.schema.attrs.map((a) => a.name);
    const name = item.name!;
    const span = item.nameSpan ?? item.span;
    if (names.length === 0) {
      diags.error('E0202', `unknown attribute '${name}' for ${subject.kindLabel}: ${subject.kindLabel} takes no attributes`, span, {
        suggestion: `remove '${name} = ...'`,
      });
      return undefined;
    }
    const close = didYouMean(name, names);
    if (close) {
      diags.error('E0202', `unknown attribute '${name}' for ${subject.kindLabel} — did you mean '${close}'?`, span, {
        suggestion: `replace '${name}' with '${close}'`,
      });
    } else {
      diags.error('E0202', `unknown attribute '${name}' for ${subject.kindLabel}; valid attributes: ${list(names)}`, span);
    }
    return close;
  }

  /** A bare item that is neither the positional value nor a flag. */
  private badBare(subject: Subject, item: Item, index: number, diags: DiagnosticBag): void {
    const { schema, who } = subject;
    const v = item.value;
    const positional = schema.attrs.find((a) => a.positional);
    const flags = schema.attrs.filter((a) => a.type.kind === 'bool').map((a) => a.name);

    // `lstm hidden` — an attribute named without a value
    const named = v.type === 'word' ? schema.attrs.find((a) => a.name === v.value) : undefined;
    if (named) {
      diags.error('E0205', `'${named.name}' needs a value — e.g. ${subject.example(named)}`, v.span);
      return;
    }
    // `pool maximum`, `positional 3` — the first item is meant for an enum positional
    if (index === 0 && positional && positional.type.kind === 'enum') {
      const values = positional.type.values;
      const close = v.type !== 'number' ? didYouMean(String(v.value), [...values, ...flags]) : undefined;
      diags.error(
        'E0203',
        `${who} ${positional.name} must be one of ${list(values)}; got ${show(v)}`,
        v.span,
        close ? { suggestion: `did you mean '${close}'? replace ${show(v)} with '${close}'` } : {},
      );
      return;
    }
    // a bare value where only the first item may be one
    if (index > 0 && positional && fitsPositional(positional.type, v)) {
      diags.error('E0205', `only the first item of ${schema.kind} may be a bare ${positional.name}; here write ${positional.name} = ${v.type === 'number' ? v.raw : v.value}`, v.span);
      return;
    }
    // anything else: say what would be accepted
    const accepted: string[] = [];
    if (positional && index === 0) {
      accepted.push(`a ${positional.type.kind === 'enum' ? 'word' : 'number'} first (its ${positional.name})`);
    }
    if (flags.length > 0) accepted.push(`the flag${flags.length > 1 ? 's' : ''} ${list(flags)}`);
    if (schema.attrs.length > 0) accepted.push(`name = value for ${list(schema.attrs.map((a) => a.name))}`);
    const takes = accepted.length > 0 ? `${schema.kind} takes ${accepted.join('; ')}` : `${schema.kind} takes no attributes`;
    if (v.type === 'word') {
      const close = didYouMean(v.value, [...flags, ...schema.attrs.map((a) => a.name)]);
      if (close) {
        diags.error('E0205', `'${v.value}' is not a flag of ${schema.kind} — did you mean '${close}'?`, v.span, {
          suggestion: `replace '${v.value}' with '${close}'`,
        });
        return;
      }
      if (STATEMENT_SCHEMAS.has(v.value)) {
        diags.error('E0205', `${who} does not understand '${v.value}', which is a layer kind — is there a stray ',' before it?`, v.span, {
          suggestion: `end the ${schema.kind} statement before '${v.value}' (remove the trailing ',')`,
        });
        return;
      }
      diags.error('E0205', `${who} does not understand '${v.value}': ${takes}`, v.span);
      return;
    }
    diags.error('E0205', `${who} does not take a bare ${v.type === 'number' ? 'number' : 'string'} here: ${takes}`, v.span);
  }

  /** Checks a value against an attribute's type; undefined (after reporting) when it does not fit. */
  private coerce(subject: Subject, spec: AttrSpec, v: Value, diags: DiagnosticBag): AttrValue | undefined {
    if (damaged(v)) return undefined; // missing or malformed value, already reported
    const what = `${subject.who} ${spec.name}`;
    const t = spec.type;
    switch (t.kind) {
      case 'int':
      case 'float': {
        if (t.kind === 'int' && t.orString !== undefined && v.type === 'string') return v.value;
        const kindWord = t.kind === 'int' ? `an integer${t.orString !== undefined ? ` or a string (${t.orString})` : ''}` : 'a number';
        if (v.type !== 'number') {
          diags.error('E0301', `${what} must be ${kindWord}; got ${show(v)}`, v.span, {
            suggestion: `write e.g. ${spec.name} = ${exampleValue(spec)}`,
          });
          return undefined;
        }
        if (!Number.isFinite(v.value)) {
          diags.error('E0303', `${what} must be a finite number; got ${v.raw}`, v.span);
          return undefined;
        }
        if (t.kind === 'int' && !Number.isInteger(v.value)) {
          diags.error('E0302', `${what} must be an integer; got ${v.raw}`, v.span);
          return undefined;
        }
        if (!inRange(t, v.value)) {
          diags.error('E0303', `${what} must be ${rangeText(t)}; got ${v.raw}`, v.span);
          return undefined;
        }
        return v.value;
      }
      case 'bool':
        if (v.type === 'word' && (v.value === 'true' || v.value === 'false')) return v.value === 'true';
        diags.error('E0306', `${what} must be true or false; got ${show(v)}`, v.span, {
          suggestion: `write ${spec.name} = true, ${spec.name} = false, or just ${spec.name} for true`,
        });
        return undefined;
      case 'string':
        if (v.type === 'string') return v.value;
        diags.error('E0301', `${what} must be a double-quoted string (${t.what}); got ${show(v)}`, v.span, {
          suggestion: `write ${spec.name} = ${JSON.stringify(v.type === 'number' ? v.raw : v.value)}`,
        });
        return undefined;
      case 'enum': {
        if ((v.type === 'word' || v.type === 'string') && t.values.includes(v.value)) return v.value;
        const close = v.type !== 'number' ? didYouMean(v.value, t.values) : undefined;
        diags.error(
          'E0203',
          `${what} must be one of ${list(t.values)}; got ${show(v)}`,
          v.span,
          close ? { suggestion: `did you mean '${close}'? replace ${show(v)} with '${close}'` } : {},
        );
        return undefined;
      }
    }
  }
}

/** Statements in a resolved list, nested bodies and repeat copies included. */
function countStatements(list: readonly ResolvedStatement[]): number {
  let n = 0;
  for (const r of list) {
    n += 1;
    if (r.copies) for (const c of r.copies) n += countStatements(c);
    else if (r.body) n += countStatements(r.body);
  }
  return n;
}

/** The same resolved statement under another path prefix (a repeat's copy i from its copy 0). */
function repath(r: ResolvedStatement, from: string, to: string): ResolvedStatement {
  const copies = r.copies?.map((c) => c.map((x) => repath(x, from, to)));
  const body = copies ? copies[0] : r.body?.map((x) => repath(x, from, to));
  return {
    ...r,
    path: r.path.startsWith(from) ? to + r.path.slice(from.length) : r.path,
    ...(body ? { body } : {}),
    ...(copies ? { copies } : {}),
  };
}

/** The id of a token string in a vocabulary. */
function tokenId(v: VocabData, token: string): number | undefined {
  if (v.kind !== 'hf') {
    const i = v.tokens.indexOf(token);
    return i < 0 ? undefined : i;
  }
  return new TextVocab(v).id(token);
}

function tokenString(v: VocabData, id: number): string {
  return v.kind === 'hf' ? new TextVocab(v).token(id) : (v.tokens[id] ?? String(id));
}

/**
 * Checks a parsed file; reports into `diags` and returns whatever could be resolved. Never throws.
 * `files` reads the vocabulary files the spec names.
 */
export function check(ast: FileAst, diags: DiagnosticBag, files?: SpecFiles): ResolvedFile {
  const before = diags.items.length;
  try {
    const resolved = new Checker(diags, files).file(ast);
    // Report in line order (the walk reports model-level problems last); within a line, as found.
    const mine = diags.items.splice(before).map((d, i) => ({ d, i }));
    mine.sort((a, b) => a.d.span.line - b.d.span.line || a.i - b.i);
    for (const x of mine.slice(0, MAX_CHECK_ERRORS)) diags.items.push(x.d);
    if (mine.length > MAX_CHECK_ERRORS) {
      diags.error('E0005', `too many errors (${mine.length}); stopped reporting after ${MAX_CHECK_ERRORS}`, mine[MAX_CHECK_ERRORS]!.d.span);
    }
    return resolved;
  } catch (e) {
    // A bug in the checker, not in the user's text (tests fuzz for this never to happen).
    const d: Diagnostic = {
      code: 'E0900',
      severity: 'error',
      message: `internal error while checking: ${e instanceof Error ? e.message : String(e)}`,
      span: { file: ast.file, start: 0, end: 0, line: 1, col: 1 },
    };
    diags.add(d);
    return { file: ast.file, models: [] };
  }
}
