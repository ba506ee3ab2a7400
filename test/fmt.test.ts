/**
 * `nnc fmt`: the canonical layout is stable (idempotent), keeps every comment, never changes what a
 * spec means — the formatted file parses to the same AST and lowers to the same IR (source positions
 * aside) for every example, fixture and golden spec — and every example and ```nn snippet in the
 * docs is formatted. The command: in place, --check (exit 1 and the file names), --stdout, syntax
 * errors.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../src/driver.ts';
import { format, tokensWithComments } from '../src/fmt.ts';
import { parse } from '../src/syntax/parse.ts';
import { docSnippets } from './snippets.ts';
import { ROOT } from './helpers.ts';

const BIN = join(ROOT, 'bin/nnc.js');
const examples = readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.nn')).map((f) => `examples/${f}`);
const specs = [
  ...examples,
  ...readdirSync(join(ROOT, 'test/fixtures'), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => `test/fixtures/${d.name}/model.nn`).filter((f) => { try { readFileSync(join(ROOT, f)); return true; } catch { return false; } }),
  ...['ir', 'parse', 'diagnostics'].flatMap((g) => readdirSync(join(ROOT, 'test/golden', g)).filter((f) => f.endsWith('.nn')).map((f) => `test/golden/${g}/${f}`)),
];
const read = (f: string) => readFileSync(join(ROOT, f), 'utf8');
const syntaxOk = (text: string) => parse(text, 'x.nn').diagnostics.every((d) => d.severity !== 'error');
/** The file's meaning: its AST, IR (or diagnostics), with line:col positions dropped. */
function meaning(text: string): string {
  const strip = (s: string) => s.replace(/\s*@\d+:\d+/g, '');
  const ast = compile(text, 'x.nn', 'ast');
  const ir = compile(text, 'x.nn', 'ir');
  return [strip(ast.output ?? ''), strip(ir.output ?? ''), ...ir.diagnostics.map((d) => `${d.code} ${d.message}`)].join('\n');
}
const comments = (text: string) => tokensWithComments(text).filter((t) => t.type.endsWith('Comment')).map((t) => t.image);

/** The same spec laid out differently: indentation, spacing, blank lines, `;` and comments changed. */
function messUp(text: string): string {
  return text
    .split('\n')
    .map((line, i) => {
      if (/^\s*\/\//.test(line) || line.includes('/*') || line.includes('*/')) return line;
      const code = line.replace(/\/\/.*$/, '');
      const comment = line.slice(code.length);
      const spaced = code.replace(/^\s+/, i % 2 ? '\t' : '      ').replace(/\s*([=,:()])\s*/g, i % 3 ? '$1' : '  $1  ').replace(/ {2,}(?=\S)/g, i % 2 ? ' ' : '   ');
      return spaced + (comment ? `   ${comment}` : '');
    })
    .join('\n')
    .replace(/\n\n/g, '\n\n\n');
}

const formattable = specs.filter((f) => syntaxOk(read(f)));

describe('nnc fmt: the canonical layout', () => {
  it('covers every example and most fixture and golden specs', () => {
    expect(examples.length).toBeGreaterThanOrEqual(10);
    expect(formattable.length).toBeGreaterThan(100);
  });

  it.each(examples)('%s is formatted', (f) => {
    expect(format(read(f), f).output).toBe(read(f));
  });

  it('every ```nn snippet of README.md and docs/ is formatted', () => {
    const snippets = docSnippets();
    expect(snippets.length).toBeGreaterThanOrEqual(3);
    for (const s of snippets) expect(format(s.text, s.where).output, s.where).toBe(s.text);
  });

  it.each(formattable)('%s: same AST and IR after formatting, idempotent, comments kept, layout-independent', (f) => {
    const text = read(f);
    const once = format(text, f).output!;
    expect(once).toBeDefined();
    expect(meaning(once)).toBe(meaning(text));
    expect(format(once, f).output).toBe(once);
    expect(comments(once)).toEqual(comments(text));
    const messy = messUp(text);
    expect(meaning(messy)).toBe(meaning(text));
    expect(format(messy, f).output).toBe(once);
  });

  it('lays out one-line models, `;`, blank lines and comments inside statements', () => {
    const text = '// header\n\n\nmodel A { input x: tokens(vocab=5) ; output y\n embedding dim=4 ;lstm 4 /* size */ , layers=2 // deep\n\n\n  residual{linear 4;relu}\n\n}\nmodel B{input x:vectors(dim=3)\noutput y\nlinear 2 // a\n// b\n}';
    expect(format(text).output).toBe(`// header

model A {
  input x: tokens(vocab = 5)
  output y
  embedding dim = 4
  lstm 4 /* size */, layers = 2 // deep

  residual {
    linear 4
    relu
  }
}

model B {
  input x: vectors(dim = 3)
  output y
  linear 2 // a
  // b
}
`);
    const split = 'model C {\n  input x: tokens(vocab = 5)\n  output y\n  embedding dim = 4\n  lstm hidden = 4, // the size\n      layers = 2\n}\n';
    expect(format(split).output).toBe(split);
    expect(meaning(split)).toBe(meaning(split.replace(' // the size', '')));
  });

  it('refuses a file with syntax errors and returns them', () => {
    const r = format('model M {\n  lstm 4 = 3\n', 'bad.nn');
    expect(r.output).toBeUndefined();
    expect(r.diagnostics.length).toBeGreaterThan(0);
  });
});

describe('nnc fmt: the command', () => {
  const run = (args: string[], cwd: string) => spawnSync(process.execPath, [BIN, 'fmt', ...args], { cwd, encoding: 'utf8' });
  it('--check lists the files that are not formatted and exits 1; formatting writes them; then --check exits 0', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nnc-fmt-'));
    writeFileSync(join(dir, 'good.nn'), read('examples/tagger.nn'));
    writeFileSync(join(dir, 'bad.nn'), messUp(read('examples/tagger.nn')));
    const check = run(['--check', 'good.nn', 'bad.nn'], dir);
    expect(check.status).toBe(1);
    expect(check.stdout).toBe('bad.nn\n');
    expect(check.stderr).toMatch(/1 file is not formatted/);
    expect(readFileSync(join(dir, 'bad.nn'), 'utf8')).toBe(messUp(read('examples/tagger.nn')));
    const write = run(['good.nn', 'bad.nn'], dir);
    expect([write.status, write.stdout]).toEqual([0, 'formatted bad.nn\n']);
    expect(readFileSync(join(dir, 'bad.nn'), 'utf8')).toBe(read('examples/tagger.nn'));
    expect(run(['--check', 'good.nn', 'bad.nn'], dir).status).toBe(0);
    const out = run(['--stdout', 'good.nn'], dir);
    expect([out.status, out.stdout]).toEqual([0, read('examples/tagger.nn')]);
  });
  it('leaves a file with syntax errors as it is, with its diagnostics, exit 1; bad usage exits 2', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nnc-fmt-'));
    writeFileSync(join(dir, 'broken.nn'), 'model M {\n  lstm hidden = \n');
    const r = run(['broken.nn'], dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^broken\.nn:\d+:\d+: error: .*\[E01\d\d\]/m);
    expect(r.stderr).toMatch(/broken\.nn has syntax errors; it was not formatted/);
    expect(readFileSync(join(dir, 'broken.nn'), 'utf8')).toBe('model M {\n  lstm hidden = \n');
    expect(run([], dir).status).toBe(2);
    expect(run(['--check', '--stdout', 'broken.nn'], dir).status).toBe(2);
    expect(run(['--frobnicate', 'broken.nn'], dir).status).toBe(2);
  });
});
