/**
 * The VS Code extension's TextMate grammar (editors/vscode/syntaxes/nn.tmLanguage.json), run as VS
 * Code runs it — vscode-textmate with the Oniguruma regex engine (vscode-oniguruma) — over every
 * example, every ```nn snippet in the docs and a file with every layer kind. What each token should
 * be comes from nnc's own lexer and parser: comments, numbers, strings, the keywords, model and
 * input names, labels, statement kinds (blocks, decode, layers) and option names.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as oniguruma from 'vscode-oniguruma';
import { INITIAL, Registry, type IGrammar } from 'vscode-textmate';
import { tokensWithComments } from '../src/fmt.ts';
import { STATEMENT_SCHEMAS } from '../src/layers/schemas.ts';
import type { ModelMember, Statement } from '../src/syntax/ast.ts';
import { parse } from '../src/syntax/parse.ts';
import { docSnippets } from './snippets.ts';
import { ROOT } from './helpers.ts';

const EXT = join(ROOT, 'editors/vscode');
const GRAMMAR = JSON.parse(readFileSync(join(EXT, 'syntaxes/nn.tmLanguage.json'), 'utf8')) as { scopeName: string; repository: { statement: { match: string } } };
let grammar: IGrammar;

beforeAll(async () => {
  const wasm = readFileSync(createRequire(import.meta.url).resolve('vscode-oniguruma/release/onig.wasm'));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  const registry = new Registry({
    onigLib: Promise.resolve({ createOnigScanner: (p) => new oniguruma.OnigScanner(p), createOnigString: (s) => new oniguruma.OnigString(s) }),
    loadGrammar: async (scope) => (scope === GRAMMAR.scopeName ? (GRAMMAR as never) : null),
  });
  grammar = (await registry.loadGrammar(GRAMMAR.scopeName))!;
});

/** The scopes of the token at each offset of `text` (innermost last). */
function scopesByOffset(text: string): string[][] {
  const out: string[][] = [];
  let stack = INITIAL;
  let offset = 0;
  for (const line of text.split('\n')) {
    const r = grammar.tokenizeLine(line, stack);
    for (const t of r.tokens) for (let i = t.startIndex; i < Math.min(t.endIndex, line.length); i++) out[offset + i] = t.scopes;
    out[offset + line.length] = [];
    offset += line.length + 1;
    stack = r.ruleStack;
  }
  return out;
}

/** [offset, expected scope prefix, what] for every token nnc's lexer and parser can name. */
function expectations(text: string): [number, string, string][] {
  const out: [number, string, string][] = [];
  for (const t of tokensWithComments(text)) {
    const scope = { LineComment: 'comment.line.double-slash.nn', BlockComment: 'comment.block.nn', Number: 'constant.numeric.nn', String: 'string.quoted.double.nn', Model: 'keyword.declaration.model.nn', Input: 'keyword.declaration.input.nn', Output: 'keyword.declaration.output.nn' }[t.type];
    if (scope) out.push([t.start, scope, t.image]);
  }
  const { ast, diagnostics } = parse(text, 'x.nn');
  expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  const statement = (s: Statement): void => {
    const kindScope = ['encoder', 'decoder', 'repeat', 'residual'].includes(s.kind) ? 'keyword.control.block.nn' : s.kind === 'decode' ? 'keyword.other.decode.nn' : 'entity.name.function.layer.nn';
    out.push([s.kindSpan.start, kindScope, s.kind]);
    if (s.labelSpan) out.push([s.labelSpan.start, 'entity.name.label.nn', s.label!]);
    for (const i of s.items) if (i.nameSpan) out.push([i.nameSpan.start, 'variable.parameter.option.nn', i.name!]);
    s.body?.forEach(statement);
  };
  const member = (m: ModelMember): void => {
    if (m.type === 'statement') return statement(m);
    out.push([m.nameSpan.start, m.type === 'input' ? 'variable.other.input.nn' : 'variable.other.output.nn', m.name]);
    if (m.type === 'input') {
      out.push([m.formSpan.start, 'support.type.input-form.nn', m.form]);
      for (const i of m.items) if (i.nameSpan) out.push([i.nameSpan.start, 'variable.parameter.option.nn', i.name!]);
    }
  };
  for (const m of ast.models) {
    out.push([m.nameSpan.start, 'entity.name.type.model.nn', m.name]);
    m.members.forEach(member);
  }
  return out;
}

function check(text: string): void {
  const scopes = scopesByOffset(text);
  const wrong = expectations(text).filter(([at, scope]) => !scopes[at]?.includes(scope)).map(([at, scope, what]) => `${what} @${at}: expected ${scope}, got ${scopes[at]?.join(' ')}`);
  expect(wrong).toEqual([]);
}

const examples = readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.nn'));
const everyKind = `/* every statement kind of the registry */
model Everything {
  input x: vectors(dim = 8, max_len = 4)
  output y; ${[...STATEMENT_SCHEMAS.values()].filter((s) => s.shape === 'layer').map((s) => s.kind).join('\n  ')}
  r: repeat 2 { residual { linear 8, bias = false; tanh } }
  decode greedy, max_len = 3 // done
}
`;

describe('the TextMate grammar of editors/vscode', () => {
  it.each(examples)('examples/%s: keywords, names, kinds, options, numbers and comments get their scopes', (f) => {
    check(readFileSync(join(ROOT, 'examples', f), 'utf8'));
  });
  it('every ```nn snippet of README.md and docs/', () => {
    const snippets = docSnippets();
    expect(snippets.length).toBeGreaterThanOrEqual(3);
    for (const s of snippets) check(s.text);
  });
  it('every layer kind, labels, one-line blocks, strings and a trailing comment', () => {
    check(everyKind);
    check('model S { input t: tokens(vocab = 5); output o\n  embedding dim = 4, vocab = 5 /* inline */; lstm 4,\n    layers = 2\n  linear out = 3 }\n');
  });
  it('names the block kinds and directives of the registry, and no others', () => {
    const [, blocks, directives] = GRAMMAR.repository.statement.match.match(/\(\?:\(([\w|]+)\)\|\(([\w|]+)\)\|/)!;
    const kinds = (shape: string) => [...STATEMENT_SCHEMAS.values()].filter((s) => s.shape === shape).map((s) => s.kind).sort();
    expect(blocks!.split('|').sort()).toEqual(kinds('block'));
    expect(directives!.split('|').sort()).toEqual(kinds('directive'));
  });
  it('the extension declares the language, the grammar and its configuration', () => {
    const pkg = JSON.parse(readFileSync(join(EXT, 'package.json'), 'utf8')) as { main: string; contributes: { languages: { id: string; extensions: string[]; configuration: string }[]; grammars: { language: string; scopeName: string; path: string }[] } };
    expect(pkg.contributes.languages[0]).toMatchObject({ id: 'nn', extensions: ['.nn'] });
    expect(pkg.contributes.grammars[0]).toMatchObject({ language: 'nn', scopeName: GRAMMAR.scopeName });
    for (const f of [pkg.main, pkg.contributes.languages[0]!.configuration, pkg.contributes.grammars[0]!.path]) expect(() => readFileSync(join(EXT, f))).not.toThrow();
    const conf = JSON.parse(readFileSync(join(EXT, 'language-configuration.json'), 'utf8')) as { comments: { lineComment: string } };
    expect(conf.comments.lineComment).toBe('//');
    expect(readFileSync(join(EXT, pkg.main), 'utf8')).toMatch(/args: \['lsp'\]/);
  });
});
