// Front-end tests: lexer, parser, AST, checker, diagnostics rendering, goldens.
// Regenerate the goldens (then review the diff):  UPDATE_GOLDEN=1 npx vitest run test/frontend.test.ts
//
//   test/golden/parse/*.nn        valid specs  → *.ast.txt (printAst) and *.resolved.txt (names, attributes)
//   test/golden/diagnostics/*.nn  invalid specs → *.diag.txt (rendered diagnostics of parse + check)
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { lexer } from '../grammar/tokens.ts';
import { CODES } from '../src/diagnostics/codes.ts';
import { DiagnosticBag, type Diagnostic } from '../src/diagnostics/diagnostic.ts';
import { renderDiagnostic, renderDiagnostics } from '../src/diagnostics/render.ts';
import { didYouMean, editDistance } from '../src/runtime/suggest.ts';
import type { FileAst, Statement } from '../src/syntax/ast.ts';
import { check } from '../src/syntax/check.ts';
import type { AttrType } from '../src/layers/schema.ts';
import { INPUT_SCHEMAS, STATEMENT_SCHEMAS } from '../src/layers/schemas.ts';
import { parse } from '../src/syntax/parse.ts';
import { printAst } from '../src/syntax/print.ts';
import type { ResolvedFile, ResolvedStatement } from '../src/syntax/resolved.ts';
import { expectGolden } from './golden.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const GOLDEN = join(ROOT, 'test/golden');

function run(text: string, file = 'test.nn'): { ast: FileAst; resolved: ResolvedFile; diagnostics: Diagnostic[] } {
  const { ast, diagnostics } = parse(text, file);
  const bag = new DiagnosticBag();
  diagnostics.forEach((d) => bag.add(d));
  const resolved = check(ast, bag);
  return { ast, resolved, diagnostics: bag.items };
}

const messages = (text: string): string[] => run(text).diagnostics.map((d) => `${d.code} ${d.message}`);
const codes = (text: string): string[] => run(text).diagnostics.map((d) => d.code);

/** Names, paths and attributes (defaults filled in; `*` marks what the user wrote). */
function printResolved(r: ResolvedFile): string {
  const out: string[] = [];
  const attrs = (s: { attrs: Record<string, unknown>; written?: ReadonlySet<string> }): string =>
    Object.entries(s.attrs)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${String(v)}${s.written?.has(k) ? '*' : ''}`)
      .join(' ');
  const walk = (list: readonly ResolvedStatement[], depth: number): void => {
    for (const s of list) {
      out.push(`${'  '.repeat(depth)}${s.path} (${s.kind}) ${attrs(s)}`.trimEnd());
      if (s.copies) s.copies.forEach((copy) => walk(copy, depth + 1));
      else if (s.body) walk(s.body, depth + 1);
    }
  };
  for (const m of r.models) {
    out.push(`model ${m.name}`);
    for (const i of m.inputs) out.push(`  input ${i.name}: ${i.form} ${attrs(i)}`.trimEnd());
    out.push(`  output ${m.output?.name ?? '(default: output)'}`);
    walk(m.chain, 1);
    if (m.decode) walk([m.decode], 1);
  }
  return `${out.join('\n')}\n`;
}

function specs(dir: string): string[] {
  return readdirSync(join(GOLDEN, dir))
    .filter((f) => f.endsWith('.nn'))
    .sort();
}

describe('golden: valid specs (test/golden/parse)', () => {
  const files = specs('parse');
  it('has at least 12 specs', () => expect(files.length).toBeGreaterThanOrEqual(12));
  for (const f of files) {
    it(f, () => {
      const path = join(GOLDEN, 'parse', f);
      const text = readFileSync(path, 'utf8');
      const rel = relative(ROOT, path);
      const { ast, resolved, diagnostics } = run(text, rel);
      expect(renderDiagnostics(diagnostics, text)).toBe('');
      expectGolden(path.replace(/\.nn$/, '.ast.txt'), printAst(ast));
      expectGolden(path.replace(/\.nn$/, '.resolved.txt'), printResolved(resolved));
    });
  }
});

describe('golden: invalid specs (test/golden/diagnostics)', () => {
  const files = specs('diagnostics');
  it('has at least 25 specs', () => expect(files.length).toBeGreaterThanOrEqual(25));
  for (const f of files) {
    it(f, () => {
      const path = join(GOLDEN, 'diagnostics', f);
      const text = readFileSync(path, 'utf8');
      const { diagnostics } = run(text, relative(ROOT, path));
      expect(diagnostics.length).toBeGreaterThan(0);
      expectGolden(path.replace(/\.nn$/, '.diag.txt'), renderDiagnostics(diagnostics, text));
    });
  }
});

describe('tokens', () => {
  const lex = (s: string) => lexer.tokenize(s).tokens.map((t) => `${t.tokenType.name}:${t.image}`);
  it('reads number forms', () => {
    expect(lex('96 -0.5 .5 1e-5 2.5E+3 1.')).toEqual(['Number:96', 'Number:-0.5', 'Number:.5', 'Number:1e-5', 'Number:2.5E+3', 'Number:1.']);
  });
  it('keeps keywords whole only', () => {
    expect(lex('model models input inputs output output_x _x9')).toEqual([
      'Model:model', 'Identifier:models', 'Input:input', 'Identifier:inputs', 'Output:output', 'Identifier:output_x', 'Identifier:_x9',
    ]);
  });
  it('skips comments and whitespace', () => {
    expect(lex('a // b\n/* c\n d */ e\t\r\nf')).toEqual(['Identifier:a', 'Identifier:e', 'Identifier:f']);
  });
  it('reads strings and punctuation', () => {
    expect(lex('"a b" { } ( ) = , : ;')).toEqual(['String:"a b"', 'LCurly:{', 'RCurly:}', 'LParen:(', 'RParen:)', 'Equals:=', 'Comma:,', 'Colon::', 'Semicolon:;']);
  });
  it('reads a name with letters outside ASCII as one token (reported once, E0006)', () => {
    expect(lex('Modèle ëx a\u0301b')).toEqual(['Identifier:Modèle', 'Identifier:ëx', 'Identifier:a\u0301b']);
    const r = parse('model Modèle { input x: tokens(vocab = 3); embedding 2 }', 'a.nn');
    expect(r.diagnostics.map((d) => [d.code, d.span.col, d.span.end - d.span.start])).toEqual([['E0006', 7, 6]]);
    expect(r.ast.models[0]!.members.length).toBe(2);
  });
  it('reads a name starting with any letter of the BMP (the lexer is given one character per bucket of its start-character table)', () => {
    const starts: string[] = [];
    for (let c = 0x80; c <= 0xffff; c++) if ((c < 0xd800 || c > 0xdfff) && /\p{L}/u.test(String.fromCharCode(c))) starts.push(String.fromCharCode(c));
    expect(starts.length).toBeGreaterThan(40_000);
    const r = lexer.tokenize(starts.map((s) => `${s}x`).join(' '));
    expect(r.errors).toEqual([]);
    expect(r.tokens.length).toBe(starts.length);
    expect(r.tokens.every((t, i) => t.tokenType.name === 'Identifier' && t.image === `${starts[i]}x`)).toBe(true);
  });
  it('groups a run of bad characters into one diagnostic', () => {
    const r = parse('model A { input x: tokens(vocab = 3) @%$ linear 3 }', 'a.nn');
    expect(r.diagnostics.map((d) => [d.code, d.span.col, d.span.end - d.span.start])).toEqual([['E0001', 38, 3]]);
  });
  it('caps the number of diagnostics', () => {
    const text = 'model A { input x: tokens(vocab = 3)\n' + 'linear 3 @\n'.repeat(200) + '}';
    const r = parse(text, 'a.nn');
    expect(r.diagnostics.length).toBe(51);
    expect(r.diagnostics[50]!.code).toBe('E0005');
  });
});

describe('parser', () => {
  const stmts = (text: string): Statement[] => {
    const r = parse(text, 't.nn');
    expect(r.diagnostics).toEqual([]);
    return r.ast.models[0]!.members.filter((m): m is Statement => m.type === 'statement');
  };
  const show = (s: Statement): string =>
    `${s.label ? `${s.label}: ` : ''}${s.kind}(${s.items.map((i) => `${i.name ? `${i.name}=` : ''}${i.value.value}`).join(',')})${s.body ? `{${s.body.map(show).join(' ')}}` : ''}`;

  it('takes a bare first item only from the same line', () => {
    expect(stmts('model A { softmax\n linear 96 }').map(show)).toEqual(['softmax()', 'linear(96)']);
    expect(stmts('model A { pool max\n relu }').map(show)).toEqual(['pool(max)', 'relu()']);
  });
  it('takes `name = value` first items from any line, and items after a comma', () => {
    expect(stmts('model A { lstm\n  hidden = 3,\n  layers = 2,\n bidirectional\n relu }').map(show)).toEqual([
      'lstm(hidden=3,layers=2,bidirectional)',
      'relu()',
    ]);
  });
  it('starts a labelled statement at `Identifier :`', () => {
    expect(stmts('model A { relu x: linear 3 }').map(show)).toEqual(['relu()', 'x: linear(3)']);
    expect(stmts('model A { input x: tokens(vocab = 3) }')).toEqual([]);
  });
  it('ends an item list at the first token that is not a comma', () => {
    expect(stmts('model A { embedding 64 lstm 128; linear 3 }').map(show)).toEqual(['embedding(64)', 'lstm(128)', 'linear(3)']);
  });
  it('accepts `;` at the top level, after and between models', () => {
    const r = parse(';model A { relu };;model B { relu };', 't.nn');
    expect(r.diagnostics).toEqual([]);
    expect(r.ast.models.map((m) => m.name)).toEqual(['A', 'B']);
  });
  it('parses nested blocks', () => {
    expect(stmts('model A { repeat 2 { residual { linear 3; relu } layernorm } }').map(show)).toEqual([
      'repeat(2){residual(){linear(3) relu()} layernorm()}',
    ]);
  });
  it('keeps the parsed number and its text', () => {
    const [s] = stmts('model A { layernorm eps = 1e-5 }');
    expect(s!.items[0]!.value).toMatchObject({ type: 'number', value: 1e-5, raw: '1e-5' });
  });
  it('unescapes strings', () => {
    const [s] = stmts('model A { pool "m\\"x" }');
    expect(s!.items[0]!.value).toMatchObject({ type: 'string', value: 'm"x' });
  });
  it('stamps spans that point at the text', () => {
    const text = 'model A {\n  input t: tokens(vocab = 3)\n  enc: lstm hidden = 256, bidirectional\n}';
    const r = parse(text, 't.nn');
    const m = r.ast.models[0]!;
    const cut = (s: { start: number; end: number }) => text.slice(s.start, s.end);
    expect(cut(m.nameSpan)).toBe('A');
    const input = m.members[0]!;
    expect(input.type === 'input' && [cut(input.nameSpan), cut(input.formSpan), cut(input.span)]).toEqual(['t', 'tokens', 'input t: tokens(vocab = 3)']);
    const s = m.members[1] as Statement;
    expect([cut(s.labelSpan!), cut(s.kindSpan), cut(s.span)]).toEqual(['enc', 'lstm', 'enc: lstm hidden = 256, bidirectional']);
    expect(s.items.map((i) => [cut(i.span), i.nameSpan ? cut(i.nameSpan) : '', cut(i.value.span)])).toEqual([
      ['hidden = 256', 'hidden', '256'],
      ['bidirectional', '', 'bidirectional'],
    ]);
    expect([s.kindSpan.line, s.kindSpan.col]).toEqual([3, 8]);
  });
  it('reports every syntax error in a file', () => {
    const text = 'model A { input x: tokens(vocab = 3) lstm 256 layers = 2\n linear 3,\n}\nmodel B { gru hidden = }\nmodel C {';
    expect(parse(text, 't.nn').diagnostics.map((d) => d.code)).toEqual([
      'E0106', 'E0105', 'E0105', 'E0102',
    ]);
  });
  it('words errors for people', () => {
    expect(messages('\n\nmodel CharLM {\n  input t: tokens(vocab = 3)\n  linear 3')).toEqual([
      "E0102 expected '}' to close model 'CharLM' (opened at 3:1)",
    ]);
    expect(messages('model A { input t: tokens(vocab = 3)\n  lstm hidden = }')).toEqual(["E0105 expected a value after 'hidden ='"]);
  });
  it('never throws on junk', () => {
    for (const text of ['', '}', '{{{{', 'model', 'model {', '\u0000\ufffd\u0001', '"', '/*', 'model A { x: }', ':::', '= = =']) {
      expect(() => run(text)).not.toThrow();
      expect(run(text).diagnostics.length).toBeGreaterThan(0);
    }
  });
});

describe('checker', () => {
  const ok = (body: string, inputs = 'input t: tokens(vocab = 10)') => `model M {\n  ${inputs}\n  ${body}\n}`;

  it('suggests close layer and attribute names', () => {
    expect(messages(ok('lstn hidden = 256'))).toEqual(["E0201 unknown layer 'lstn' — did you mean 'lstm'?"]);
    expect(messages(ok('lstm hiden = 256'))[0]).toBe("E0202 unknown attribute 'hiden' for lstm — did you mean 'hidden'?");
    expect(messages(ok('pool maximum'))).toEqual(["E0203 pool mode must be one of last, first, mean, max; got 'maximum'"]);
  });
  it('lists the valid attributes when nothing is close', () => {
    expect(messages(ok('lstm 3, zzz = 1'))).toEqual(["E0202 unknown attribute 'zzz' for lstm; valid attributes: hidden, layers, bidirectional, bias, merge"]);
  });
  it('shows the fix for a missing attribute', () => {
    expect(messages(ok('lstm layers = 2'))).toEqual(["E0305 lstm needs 'hidden' — e.g. lstm hidden = 128"]);
  });
  it('reads bare items as the positional value or a flag', () => {
    const r = run(ok('linear 96; pool max; positional learned, max_len = 4; attention self, causal; dropout 0.2'));
    expect(r.diagnostics).toEqual([]);
    const [linear, pool, positional, attention, dropout] = r.resolved.models[0]!.chain;
    expect(linear!.attrs).toMatchObject({ out: 96, bias: true });
    expect(pool!.attrs).toMatchObject({ mode: 'max' });
    expect(positional!.attrs).toMatchObject({ kind: 'learned', max_len: 4 });
    expect(attention!.attrs).toMatchObject({ self: true, causal: true, score: 'dot', heads: undefined });
    expect([...attention!.written].sort()).toEqual(['causal', 'self']);
    expect(dropout!.attrs).toMatchObject({ p: 0.2 });
  });
  it('names layers and blocks by kind and index, labels win', () => {
    const r = run(ok('embedding 8; lstm 8; enc: lstm 8; lstm 8; repeat 4 { residual { attention self, heads = 2 }; layernorm }'));
    expect(r.diagnostics).toEqual([]);
    const chain = r.resolved.models[0]!.chain;
    expect(chain.map((s) => s.path)).toEqual(['embedding0', 'lstm0', 'enc', 'lstm2', 'repeat0']);
    const repeat = chain[4]!;
    expect(repeat.copies!.length).toBe(4);
    expect(repeat.copies![3]!.map((s) => s.path)).toEqual(['repeat0.3.residual0', 'repeat0.3.layernorm0']);
    expect(repeat.copies![3]![0]!.body![0]!.path).toBe('repeat0.3.residual0.attention0');
    expect(repeat.body).toBe(repeat.copies![0]);
  });
  it('names encoder and decoder scopes after their kind', () => {
    const r = run(
      'model S { input s: tokens(vocab = 5)\n input t: tokens(vocab = 5)\n encoder { embedding 4; lstm 4 }\n decoder init = bridge { embedding 4; lstm 4 }\n decode beam = 2 }',
    );
    expect(r.diagnostics).toEqual([]);
    const m = r.resolved.models[0]!;
    expect(m.chain.map((s) => [s.path, ...(s.body ?? []).map((b) => b.path)])).toEqual([
      ['encoder', 'encoder.embedding0', 'encoder.lstm0'],
      ['decoder', 'decoder.embedding0', 'decoder.lstm0'],
    ]);
    expect(m.decode?.attrs['beam']).toBe(2);
    expect(m.inputs.map((i) => i.name)).toEqual(['s', 't']);
  });
  it('reports every problem in one run', () => {
    expect(codes('model A { input t: tokens(vocab = 0)\n lstn 3\n lstm 0\n pool maximum\n linear 3 { relu } }\nmodel A { }')).toEqual([
      'E0303', 'E0201', 'E0303', 'E0203', 'E0402', 'E0410', 'E0406', 'E0412',
    ]);
  });
  it('reports a file without models at 1:1', () => {
    const d = run('// nothing\n').diagnostics;
    expect(d.map((x) => [x.code, x.span.line, x.span.col])).toEqual([['E0411', 1, 1]]);
  });
  it('sets output when declared', () => {
    expect(run(ok('linear 3')).resolved.models[0]!.output).toBeUndefined();
    expect(run(ok('output y\n linear 3')).resolved.models[0]!.output?.name).toBe('y');
  });
});

describe('rendering', () => {
  const d = (start: number, end: number, line: number, col: number, extra: Partial<Diagnostic> = {}): Diagnostic => ({
    code: 'E0201',
    severity: 'error',
    message: "unknown layer 'lstn' — did you mean 'lstm'?",
    span: { file: 'examples/x.nn', start, end, line, col },
    ...extra,
  });
  const text = 'model A {\n  input t: tokens(vocab = 3)\n  lstn hidden = 256\n}\n';
  it('matches the contract format', () => {
    expect(renderDiagnostic(d(41, 45, 3, 3, { suggestion: "replace 'lstn' with 'lstm'" }), text)).toBe(
      [
        "examples/x.nn:3:3: error: unknown layer 'lstn' — did you mean 'lstm'? [E0201]",
        '    3 |   lstn hidden = 256',
        '      |   ^^^^',
        "  help: replace 'lstn' with 'lstm'",
      ].join('\n'),
    );
  });
  it('renders the real diagnostic the same way', () => {
    const r = run(text, 'examples/x.nn');
    expect(renderDiagnostics(r.diagnostics, text)).toBe(
      "examples/x.nn:3:3: error: unknown layer 'lstn' — did you mean 'lstm'? [E0201]\n    3 |   lstn hidden = 256\n      |   ^^^^\n  help: replace 'lstn' with 'lstm'\n",
    );
  });
  it('shows at least one caret and clamps at the line end', () => {
    expect(renderDiagnostic(d(9, 9, 1, 10), text).split('\n').slice(1)).toEqual(['    1 | model A {', '      |          ^']);
    expect(renderDiagnostic(d(6, 30, 1, 7), text).split('\n')[2]).toBe('      |       ^^^');
  });
  it('expands tabs', () => {
    const t = 'model A {\n\tlstn 3\n}';
    expect(renderDiagnostic(d(11, 15, 2, 2), t).split('\n').slice(1)).toEqual(['    2 |     lstn 3', '      |     ^^^^']);
  });
  it('prints notes with their location', () => {
    const out = renderDiagnostic(d(41, 45, 3, 3, { notes: [{ message: 'first here', span: { file: 'examples/x.nn', start: 12, end: 17, line: 2, col: 3 } }] }), text);
    expect(out.split('\n')[3]).toBe('  note: examples/x.nn:2:3: first here');
  });
  it('widens the gutter for long files', () => {
    const long = `${'\n'.repeat(123456)}lstn`;
    expect(renderDiagnostic(d(123456, 123460, 123457, 1), long).split('\n').slice(1)).toEqual(['123457 | lstn', '       | ^^^^']);
  });
});

describe('suggestions', () => {
  it('computes Damerau–Levenshtein distance', () => {
    expect(editDistance('lstn', 'lstm')).toBe(1);
    expect(editDistance('tahn', 'tanh')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });
  it('only suggests close candidates', () => {
    expect(didYouMean('lstn', ['rnn', 'gru', 'lstm'])).toBe('lstm');
    expect(didYouMean('LSTM', ['lstm'])).toBe('lstm');
    expect(didYouMean('transformer', ['rnn', 'gru', 'lstm'])).toBeUndefined();
    expect(didYouMean('big', ['bias', 'bidirectional'])).toBeUndefined();
  });
});

describe('diagnostic codes', () => {
  it('every code used in the front end is in the table and in docs/diagnostics.md', () => {
    const sources = ['grammar/parser.ts', 'src/syntax/parse.ts', 'src/syntax/visitor.ts', 'src/syntax/check.ts'];
    const used = new Set<string>();
    for (const s of sources) for (const m of readFileSync(join(ROOT, s), 'utf8').matchAll(/'(E\d{4})'/g)) used.add(m[1]!);
    const docs = readFileSync(join(ROOT, 'docs/diagnostics.md'), 'utf8');
    for (const c of used) {
      expect(Object.keys(CODES), c).toContain(c);
    }
    for (const c of Object.keys(CODES)) expect(docs, c).toContain(c);
  });
});

/** The layer reference tables of docs/language.md, generated from the schemas. */
function layerReference(): string {
  const type = (t: AttrType): string => {
    if (t.kind === 'enum') return t.values.join(' \\| ');
    if (t.kind === 'bool') return 'flag';
    if (t.kind === 'string') return `"string" (${t.what})`;
    const lower = t.min === undefined ? '' : ` ${t.kind === 'float' && t.minExclusive ? '>' : '≥'} ${t.min}`;
    const upper = t.max === undefined ? '' : `${lower ? ',' : ''} ≤ ${t.max}`;
    const orString = t.kind === 'int' && t.orString !== undefined ? `, or "string" (${t.orString})` : '';
    return `${t.kind}${lower}${upper}${orString}`;
  };
  const out: string[] = [];
  const section = (title: string, schemas: Iterable<import('../src/layers/schema.ts').KindSchema>): void => {
    out.push('', `### ${title}`);
    for (const s of schemas) {
      const where = s.topLevelOnly ? ', model level only' : '';
      out.push('', `#### \`${s.kind}\` — ${s.family} ${s.shape}${where}`, '', `${s.doc}.`, '');
      if (s.attrs.length === 0) {
        out.push('No attributes.');
        continue;
      }
      out.push('| attribute | type | default | meaning |', '|---|---|---|---|');
      for (const a of s.attrs) {
        const dflt = a.required ? '**required**' : a.default !== undefined ? `\`${String(a.default)}\`` : '—';
        out.push(`| \`${a.name}\` | ${type(a.type)} | ${dflt} | ${a.positional ? '*positional*; ' : ''}${a.doc} |`);
      }
    }
  };
  section('Statements', STATEMENT_SCHEMAS.values());
  section('Input forms', INPUT_SCHEMAS.values());
  return `${out.join('\n')}\n`;
}

describe('docs/language.md', () => {
  it('has the layer reference of the current schemas', () => {
    const path = join(ROOT, 'docs/language.md');
    const text = readFileSync(path, 'utf8');
    const m = /(<!-- reference:begin[^\n]*-->\n)([\s\S]*?)(<!-- reference:end -->)/.exec(text);
    expect(m, 'reference markers in docs/language.md').not.toBeNull();
    const generated = layerReference();
    if (process.env['UPDATE_GOLDEN'] === '1') {
      if (m![2] !== generated) writeFileSync(path, text.replace(m![0], `${m![1]}${generated}${m![3]}`));
      return;
    }
    expect(m![2], 'docs/language.md is out of date; run UPDATE_GOLDEN=1 npx vitest run test/frontend.test.ts').toBe(generated);
  });
});
