/**
 * The `nnc` command line, run as a user runs it: `node bin/nnc.js …` in a subprocess, checking exit
 * codes (0 ok, 1 errors in the spec, 2 bad usage, 70 internal error), what goes to stdout and
 * stderr, the diagnostic format (`file:line:col: error: message [Ecode]`, the source line, a caret
 * line) and the files written. Contract: README.md ("Command line").
 */
import { spawn } from 'node:child_process';
import { cpSync, linkSync, symlinkSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../src/cli.ts';
import { FIXTURES, fixtureNames, loadCase, maxAbsDiff, ROOT, toInputs } from './helpers.ts';

const BIN = join(ROOT, 'bin/nnc.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node bin/nnc.js ...args` in `cwd` (the repository root by default). */
/** Runs the real binary, bin/nnc.js, in a child process. */
function spawnNnc(args: string[], cwd = ROOT): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.NNC_DEBUG;
    const p = spawn(process.execPath, [BIN, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * The CLI's `main(argv)` in this process (a child process costs about 2 s of CPU, mostly loading the
 * compiler through tsx): stdout and stderr captured, the working directory switched, one call at a
 * time. The exit code is what bin/nnc.js would exit with; 'the nnc binary' below runs the real one.
 */
let queue: Promise<unknown> = Promise.resolve();
function nnc(args: string[], cwd = ROOT): Promise<Run> {
  const run = async (): Promise<Run> => {
    const out: string[] = [];
    const err: string[] = [];
    const write = { out: process.stdout.write, err: process.stderr.write };
    const before = { cwd: process.cwd(), debug: process.env.NNC_DEBUG };
    delete process.env.NNC_DEBUG;
    process.stdout.write = ((chunk: string | Uint8Array) => (out.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8')), true)) as typeof process.stdout.write;
    process.stderr.write = ((chunk: string | Uint8Array) => (err.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8')), true)) as typeof process.stderr.write;
    process.chdir(cwd);
    try {
      const code = await main(args);
      return { code, stdout: out.join(''), stderr: err.join('') };
    } finally {
      process.stdout.write = write.out;
      process.stderr.write = write.err;
      process.chdir(before.cwd);
      if (before.debug !== undefined) process.env.NNC_DEBUG = before.debug;
    }
  };
  const p = queue.then(run, run);
  queue = p.catch(() => undefined);
  return p;
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'nnc-cli-'));
}

/** Writes `text` (or bytes) to a fresh temp dir as `name`; returns the path. */
function specFile(text: string | Uint8Array, name = 'spec.nn'): string {
  const path = join(tempDir(), name);
  writeFileSync(path, text);
  return path;
}

interface Diag {
  file: string;
  line: number;
  col: number;
  severity: 'error' | 'warning';
  message: string;
  code: string;
  /** the source line as displayed (after `N | `) */
  shown: string;
  /** 0-based display column of the first caret, and how many carets */
  caretAt: number;
  carets: number;
}

const HEADER = /^(.+?):(\d+):(\d+): (error|warning): (.*) \[([EW]\d{4})\]$/;
const SOURCE = /^ *(\d+) \|(?: (.*))?$/;
const CARET = /^ +\| ( *)(\^+)$/;

/**
 * Parses stderr into diagnostics, failing the test on any line that is not part of a diagnostic:
 * header, source line, caret line, `  help:` / `  note:` lines, blank lines. So a stack trace, a
 * bare exception or a malformed diagnostic anywhere in stderr fails.
 */
function parseDiagnostics(stderr: string): Diag[] {
  const lines = stderr.split('\n');
  const out: Diag[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (l === '' || l.startsWith('  help: ') || l.startsWith('  note: ')) continue;
    const h = HEADER.exec(l);
    expect(h, `stderr line ${i + 1} is not a diagnostic header:\n${l}\n--- stderr ---\n${stderr}`).not.toBeNull();
    const s = SOURCE.exec(lines[i + 1] ?? '');
    expect(s, `diagnostic without a source line:\n${l}\n${lines[i + 1]}`).not.toBeNull();
    const c = CARET.exec(lines[i + 2] ?? '');
    expect(c, `diagnostic without a caret line:\n${l}\n${lines[i + 1]}\n${lines[i + 2]}`).not.toBeNull();
    expect(Number(s![1]), 'the source line shown is the diagnostic line').toBe(Number(h![2]));
    // the '|' of the caret line lines up with the source line's
    expect(lines[i + 2].indexOf('|')).toBe(lines[i + 1].indexOf('|'));
    out.push({ file: h![1], line: Number(h![2]), col: Number(h![3]), severity: h![4] as Diag['severity'], message: h![5], code: h![6], shown: s![2] ?? '', caretAt: c![1].length, carets: c![2].length });
    i += 2;
  }
  return out;
}

/** No stack trace, no internal error: what a user error must never produce. */
function expectNoCrash(r: Run): void {
  expect(r.code, `exit code (stderr: ${r.stderr.slice(0, 2000)})`).not.toBe(70);
  expect(r.stderr).not.toMatch(/^ {4}at .*$/m);
  expect(r.stderr).not.toMatch(/nnc: internal error|TypeError|RangeError|SyntaxError|ReferenceError|Maximum call stack/);
}

/** A spec error: exit 1, only well-formed located diagnostics on stderr, nothing on stdout. */
function expectSpecErrors(r: Run, file: string): Diag[] {
  expectNoCrash(r);
  expect(r.code, r.stderr).toBe(1);
  expect(r.stdout).toBe('');
  const diags = parseDiagnostics(r.stderr).filter((d) => d.severity === 'error');
  expect(diags.length).toBeGreaterThan(0);
  for (const d of diags) {
    expect(d.file).toBe(file);
    expect(d.line).toBeGreaterThanOrEqual(1);
    expect(d.col).toBeGreaterThanOrEqual(1);
  }
  return diags;
}

/** For ASCII lines without tabs: the shown line is the file's line and the caret sits at col. */
function expectCaretAt(d: Diag, text: string): void {
  const src = text.split('\n')[d.line - 1];
  expect(d.shown).toBe(src.trimEnd());
  expect(d.caretAt, `caret column of ${d.file}:${d.line}:${d.col}`).toBe(d.col - 1);
}

/** Splits IR text into the top level (scan bodies removed) and the scan bodies. */
function irParts(ir: string): { top: string[]; bodies: string[][] } {
  const top: string[] = [];
  const bodies: string[][] = [];
  let body: string[] | undefined;
  let bodyIndent = '';
  for (const line of ir.split('\n')) {
    if (body) {
      if (line === `${bodyIndent}}`) {
        bodies.push(body);
        body = undefined;
      } else body.push(line);
      continue;
    }
    const m = /^( *)body \{$/.exec(line);
    if (m) {
      body = [];
      bodyIndent = m[1];
    } else top.push(line);
  }
  expect(body, 'unclosed scan body').toBeUndefined();
  return { top, bodies };
}

const count = (lines: string[], re: RegExp) => lines.filter((l) => re.test(l)).length;

const LSTM_SPEC = `// a 1-layer LSTM
model Tiny {
  input text: tokens(vocab = 10)
  output y
  embedding dim = 4
  lstm hidden = 5
}
`;

// ───────────── compile ─────────────

describe.concurrent('nnc compile', () => {
  it('compile FILE -o OUT writes a module that runs (imported from outside the project)', async () => {
    // an app outside the project that depends on nnc: the module imports nnc/runtime from its node_modules
    const dir = tempDir();
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(ROOT, join(dir, 'node_modules/nnc'), 'dir');
    const out = join(dir, 'nested/deeper/lstm.ts');
    const r = await nnc(['compile', 'test/fixtures/lstm/model.nn', '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^wrote .*lstm\.ts \(Lstm: \d+ kernels, 5 weights\)\n$/);
    expect(r.stderr).toBe('');
    const ts = readFileSync(out, 'utf8');
    expect(ts).toMatch(/^\/\/ Generated by nnc from test\/fixtures\/lstm\/model\.nn/);
    expect(ts).toContain('export const createModel = createLstm;');
    expect(ts).toContain('export const manifest = LstmManifest;');
    expect(ts).toMatch(/export interface LstmInputs \{[\s\S]*?\n\s*text: __nnc\.TokensInput;\n\}/);
    expect(ts).toMatch(/export interface LstmOutputs \{[\s\S]*?\n\s*y: __nnc\.Tensor<Float32Array, \[number, number, \d+\]>/);
    expect(ts).toContain(`import * as __nnc from 'nnc/runtime';`);
    const mod = await import(out);
    const model = await mod.createModel({ backend: 'cpu' });
    try {
      const { weights, case: c } = loadCase('lstm');
      model.loadWeights(weights);
      const y = (await model.forward(toInputs(c))).y;
      expect(y.shape).toEqual(c.outputs.y.shape);
      expect(maxAbsDiff(y.data, c.outputs.y.data)).toBeLessThanOrEqual(1e-5);
    } finally {
      model.dispose();
    }
  });

  it('--out is a synonym of -o; -o may come before the file', async () => {
    const dir = tempDir();
    const r1 = await nnc(['compile', '--out', join(dir, 'a.ts'), 'test/fixtures/lstm/model.nn']);
    const r2 = await nnc(['compile', '-o', join(dir, 'b.ts'), 'test/fixtures/lstm/model.nn']);
    expect([r1.code, r2.code]).toEqual([0, 0]);
    expect(readFileSync(join(dir, 'a.ts'), 'utf8')).toBe(readFileSync(join(dir, 'b.ts'), 'utf8'));
  });

  it('writes generated/<name>.ts relative to the working directory by default', async () => {
    const cwd = tempDir();
    mkdirSync(join(cwd, 'specs'));
    writeFileSync(join(cwd, 'specs/tiny.nn'), LSTM_SPEC);
    const r = await nnc(['compile', 'specs/tiny.nn'], cwd);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^wrote generated\/tiny\.ts \(Tiny: \d+ kernels, \d+ weights\)\n$/);
    expect(readdirSync(join(cwd, 'generated'))).toEqual(['tiny.ts']);
    expect(readFileSync(join(cwd, 'generated/tiny.ts'), 'utf8')).toContain('export const createModel = createTiny;');
    expect(existsSync(join(cwd, 'specs/generated')), 'not next to the spec').toBe(false);
  });

  it('the default output is what -o writes (warnings on stderr do not stop it)', async () => {
    const cwd = tempDir();
    cpSync(join(ROOT, 'examples/char_lm.nn'), join(cwd, 'char_lm.nn'));
    const [r, viaO] = await Promise.all([nnc(['compile', 'char_lm.nn'], cwd), nnc(['compile', 'char_lm.nn', '-o', 'elsewhere/x.ts'], cwd)]);
    expect([r.code, viaO.code], r.stderr).toEqual([0, 0]);
    for (const d of parseDiagnostics(r.stderr)) expect(d.severity, d.message).toBe('warning');
    expect(readFileSync(join(cwd, 'generated/char_lm.ts'), 'utf8')).toBe(readFileSync(join(cwd, 'elsewhere/x.ts'), 'utf8'));
  });

  it.each([
    ['ast', /^file .*tiny\.nn\n {2}model Tiny @2:1\n/, /statement lstm @6:3/],
    ['ir', /^model Tiny\(text: tokens\(vocab=10\)\) -> y\n/, /= scan /],
    ['ir-opt', /^model Tiny\(text: tokens\(vocab=10\)\) -> y\n/, /kernel k\d+ = fused\(/],
    ['ts', /^\/\/ Generated by nnc from /, /export const createModel = createTiny;/],
  ])('--emit=%s prints the stage to stdout and writes nothing', async (stage, start, has) => {
    const cwd = tempDir();
    writeFileSync(join(cwd, 'tiny.nn'), LSTM_SPEC);
    for (const args of [[`--emit=${stage}`], ['--emit', stage]]) {
      const r = await nnc(['compile', 'tiny.nn', ...args], cwd);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(start);
      expect(r.stdout).toMatch(has);
    }
    expect(readdirSync(cwd)).toEqual(['tiny.nn']);
  });

  it('--emit=ir -o OUT writes the stage to OUT', async () => {
    const dir = tempDir();
    const out = join(dir, 'tiny.ir');
    const r = await nnc(['compile', 'test/fixtures/lstm/model.nn', '--emit=ir', '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`wrote ${out} (--emit=ir)\n`);
    expect(readFileSync(out, 'utf8')).toMatch(/^model Lstm\(/);
  });

  it('-O0, -O1 and -O2 are accepted and change what is fused', async () => {
    const file = specFile(LSTM_SPEC);
    const [o0, o1, o2, dflt] = await Promise.all(['-O0', '-O1', '-O2', undefined].map((o) => nnc(['compile', file, '--emit=ir-opt', ...(o ? [o] : [])])));
    for (const r of [o0, o1, o2, dflt]) expect(r.code, r.stderr).toBe(0);
    expect(dflt.stdout).toBe(o2.stdout);
    // -O0: no hoisting, many kernels per step; -O1: hoisted, still many; -O2: hoisted, one kernel per step
    const stepKernels = (ir: string) => irParts(ir).bodies.map((b) => count(b, /^\s*kernel /));
    expect(o0.stdout).not.toContain('(all steps)');
    expect(stepKernels(o0.stdout)[0]).toBeGreaterThan(8);
    expect(o1.stdout).toContain('x·Wᵀ (all steps)');
    expect(stepKernels(o1.stdout)[0]).toBeGreaterThan(8);
    expect(o2.stdout).toContain('x·Wᵀ (all steps)');
    expect(stepKernels(o2.stdout)).toEqual([1]);
    const dir = tempDir();
    for (const o of ['-O0', '-O1']) {
      const r = await nnc(['compile', file, o, '-o', join(dir, `m${o}.ts`)]);
      expect(r.code, r.stderr).toBe(0);
      expect(readFileSync(join(dir, `m${o}.ts`), 'utf8')).toContain('export const createModel');
    }
  });
});

// ───────────── what the optimiser does to an LSTM ─────────────

describe.concurrent('--emit=ir / --emit=ir-opt on an LSTM', () => {
  it('ir-opt: one fused kernel per time step, the input projection hoisted out of the scan', async () => {
    const r = await nnc(['compile', 'test/fixtures/lstm/model.nn', '--emit=ir-opt']);
    expect(r.code, r.stderr).toBe(0);
    const { top, bodies } = irParts(r.stdout);
    expect(bodies).toHaveLength(1);
    const [body] = bodies;
    // exactly one kernel in the body, and it is a fused one: one launch per step
    expect(count(body, /^\s*kernel /)).toBe(1);
    expect(count(body, /^\s*kernel k\d+ = fused\([^)]*\) -> %\d+/)).toBe(1);
    // the recurrent matmul (all four gates stacked) is inside; the input projection is not
    expect(count(body, /^\s*%\d+ = matmul /)).toBe(1);
    expect(body.join('\n')).not.toContain('all steps');
    // outside: the hoisted x·Wᵀ for all steps, feeding the scan, run as its own kernel
    const hoisted = top.filter((l) => /^\s*%\d+ = matmul .*# .*x·Wᵀ \(all steps\)/.test(l));
    expect(hoisted).toHaveLength(1);
    expect(hoisted[0]).toMatch(/: \[B, T, 20\]/);
    const hoistedId = /^\s*(%\d+) = matmul/.exec(hoisted[0])![1];
    expect(top.some((l) => new RegExp(`= scan ${hoistedId}, `).test(l)), 'the scan reads the hoisted projection').toBe(true);
    expect(count(top, /^\s*kernel k\d+ = loop over t -> /)).toBe(1);
    expect(count(top, /^\s*kernel .*# .*x·Wᵀ \(all steps\)$/)).toBe(1);
  });

  it('ir: the un-hoisted per-gate form (8 matmuls in the body of a 1-layer LSTM)', async () => {
    const r = await nnc(['compile', 'test/fixtures/lstm/model.nn', '--emit=ir']);
    expect(r.code, r.stderr).toBe(0);
    const { top, bodies } = irParts(r.stdout);
    expect(bodies).toHaveLength(1);
    const [body] = bodies;
    expect(count(body, /^\s*%\d+ = matmul /)).toBe(8);
    // one x- and one h-matmul per gate i, f, g, o
    for (const g of ['i', 'f', 'g', 'o']) {
      expect(count(body, new RegExp(`^\\s*%\\d+ = matmul .*# lstm0\\.l0\\.x${g}\\b`)), `x${g}`).toBe(1);
      expect(count(body, new RegExp(`^\\s*%\\d+ = matmul .*# lstm0\\.l0\\.h${g}\\b`)), `h${g}`).toBe(1);
    }
    expect(count(top, /^\s*%\d+ = matmul /)).toBe(0);
    expect(r.stdout).not.toContain('all steps');
    expect(r.stdout).not.toMatch(/^\s*kernel /m);
  });

  it('ir-opt on a 2-layer bidirectional LSTM: four scans, each one fused kernel, four hoisted projections', async () => {
    const spec = LSTM_SPEC.replace('lstm hidden = 5', 'lstm hidden = 5, layers = 2, bidirectional');
    const r = await nnc(['compile', specFile(spec), '--emit=ir-opt']);
    expect(r.code, r.stderr).toBe(0);
    const { top, bodies } = irParts(r.stdout);
    expect(bodies).toHaveLength(4);
    for (const body of bodies) {
      expect(count(body, /^\s*kernel k\d+ = fused\(/)).toBe(1);
      expect(count(body, /^\s*kernel /)).toBe(1);
    }
    expect(count(top, /^\s*%\d+ = matmul .*x·Wᵀ \(all steps\)/)).toBe(4);
    expect(count(top, /= scan /)).toBe(4);
  });
});

// ───────────── check ─────────────

describe.concurrent('nnc check', () => {
  it.each(readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.nn')))('examples/%s is valid: exit 0, nothing but warnings', async (f) => {
    const r = await nnc(['check', `examples/${f}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    for (const d of parseDiagnostics(r.stderr)) expect(d.severity, d.message).toBe('warning');
  });

  it('a valid spec: exit 0, no output at all', async () => {
    const r = await nnc(['check', specFile(LSTM_SPEC)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('');
  });

  it('reports every error in the file, each located, with source line and caret', async () => {
    const text = `model M {
  input text: tokens(vocab = 10)
  output y
  embeding dim = 4
  lstm hidden = 0
  linaer 3
}
`;
    const file = specFile(text, 'multi.nn');
    const diags = expectSpecErrors(await nnc(['check', file]), file);
    expect(diags.map((d) => d.line)).toEqual([4, 5, 6]);
    for (const d of diags) expectCaretAt(d, text);
    expect(diags[0]).toMatchObject({ col: 3, code: 'E0201', carets: 'embeding'.length });
    expect(diags[0].message).toBe("unknown layer 'embeding' — did you mean 'embedding'?");
    expect(diags[1].message).toContain('hidden');
    expect(diags[2].message).toBe("unknown layer 'linaer' — did you mean 'linear'?");
  });

  it("an unknown layer gets a did-you-mean ('lstn' → 'lstm')", async () => {
    const text = LSTM_SPEC.replace('lstm hidden', 'lstn hidden');
    const file = specFile(text);
    const [d, ...rest] = expectSpecErrors(await nnc(['check', file]), file);
    expect(rest).toEqual([]);
    expect(d).toMatchObject({ line: 6, col: 3, code: 'E0201', carets: 4 });
    expect(d.message).toMatch(/unknown layer 'lstn' — did you mean 'lstm'\?/);
    expectCaretAt(d, text);
  });

  it('the same errors make compile and weights exit 1 without writing anything', async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, 'bad.nn'), LSTM_SPEC.replace('lstm hidden', 'lstn hidden'));
    for (const args of [['compile', 'bad.nn'], ['compile', 'bad.nn', '-o', 'out.ts'], ['compile', 'bad.nn', '--emit=ir'], ['weights', 'bad.nn', '--json']]) {
      const [d] = expectSpecErrors(await nnc(args, cwd), 'bad.nn');
      expect(d.code).toBe('E0201');
    }
    expect(readdirSync(cwd)).toEqual(['bad.nn']);
  });

  const lstmText = readFileSync(join(FIXTURES, 'lstm/model.nn'), 'utf8');
  const lastBrace = lstmText.lastIndexOf('}');
  it.each([12, 40, 50, 60, 75, 90, lastBrace - 1, lastBrace])('a spec truncated after %i chars: exit 1, located diagnostic, no stack trace', async (cut) => {
    const file = specFile(lstmText.slice(0, cut), 'trunc.nn');
    const diags = expectSpecErrors(await nnc(['check', file]), file);
    const lines = lstmText.slice(0, cut).split('\n').length;
    for (const d of diags) expect(d.line).toBeLessThanOrEqual(lines);
  });

  /** Deterministic junk (mulberry32). */
  const junk = (n: number, seed: number) => {
    let a = seed >>> 0;
    return Uint8Array.from({ length: n }, () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = Math.imul(a ^ (a >>> 15), a | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) & 0xff;
    });
  };
  it.each([
    ['random bytes (seed 1)', () => junk(3000, 1)],
    ['random bytes (seed 2)', () => junk(3000, 2)],
    ['random bytes (seed 3)', () => junk(200, 3)],
    ['every byte value', () => Uint8Array.from({ length: 256 }, (_, i) => i)],
    ['NUL bytes', () => new Uint8Array(64)],
    ['a gzip header and junk', () => Uint8Array.from([0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 3, ...junk(100, 4)])],
    ['an empty file', () => new Uint8Array(0)],
    ['a UTF-16 spec', () => new Uint8Array(Buffer.from('\ufeff' + LSTM_SPEC, 'utf16le'))],
  ])('a file of %s: exit 1, located diagnostics, never a stack trace', async (_, bytes) => {
    const file = specFile(bytes(), 'junk.nn');
    expectSpecErrors(await nnc(['check', file]), file);
  });
});

// ───────────── errors found while lowering (shapes) ─────────────

describe.concurrent('shape errors found during lowering', () => {
  it.each([
    ['embedding after a vectors input', 'model M {\n  input x: vectors(dim = 4)\n  output y\n  embedding dim = 4\n}\n', 4, 'E0504', /embedding/],
    ['flatten without max_len', 'model M {\n  input text: tokens(vocab = 10)\n  output y\n  embedding dim = 4\n  flatten\n  linear 3\n}\n', 5, 'E0505', /max_len/],
    ['residual { linear 3 } on 5 features', 'model M {\n  input x: vectors(dim = 5)\n  output y\n  residual { linear 3 }\n}\n', 4, 'E0506', /\[B, T, 5\].*\[B, T, 3\]/],
    ['lstm directly on token ids', 'model M {\n  input text: tokens(vocab = 10)\n  output y\n  lstm hidden = 5\n}\n', 4, 'E0502', /token ids/],
    ['gru after pool (no time axis left)', 'model M {\n  input text: tokens(vocab = 10)\n  output y\n  embedding dim = 4\n  pool mean\n  gru hidden = 3\n}\n', 6, 'E0503', /already pooled/],
  ])('%s: exit 1, diagnostic at the offending line', async (_, text, line, code, msg) => {
    const file = specFile(text);
    for (const cmd of ['check', 'compile']) {
      const diags = expectSpecErrors(await nnc([cmd, file, ...(cmd === 'compile' ? ['-o', join(tempDir(), 'm.ts')] : [])]), file);
      const d = diags[0];
      expect(d.line, `${d.message}`).toBe(line);
      if (code) expect(d.code).toBe(code);
      expect(d.message).toMatch(msg);
      expectCaretAt(d, text);
    }
  });
});

describe.concurrent('seq2seq models compile', () => {
  it('an encoder/decoder model with attention: check, compile and weights exit 0', async () => {
    const file = specFile('model S {\n  input source: tokens(vocab = 10)\n  input target: tokens(vocab = 12)\n  output translation\n  encoder {\n    embedding 8\n    lstm 8\n  }\n  decoder {\n    embedding 8\n    attention score = general\n    lstm 8\n    linear 12\n    log_softmax\n  }\n}\n');
    for (const args of [['check', file], ['compile', file, '-o', join(tempDir(), 'm.ts')], ['weights', file, '--json']]) {
      const r = await nnc(args);
      expect(r.code, r.stderr).toBe(0);
    }
    const w = JSON.parse((await nnc(['weights', file, '--json'])).stdout) as { name: string; shape: number[] }[] | { weights: { name: string; shape: number[] }[] };
    const names = (Array.isArray(w) ? w : w.weights).map((x) => x.name);
    expect(names).toContain('decoder.attention0.weight');
    expect(names).toContain('decoder.lstm0.weight_ih_l0');
  });
});

describe.concurrent('Transformer layers compile (they were E0599 in 0.1)', () => {
  it.each([
    ['attention self', 'model M {\n  input text: tokens(vocab = 10)\n  output y\n  embedding dim = 4\n  attention self, heads = 2\n  linear 3\n}\n'],
    ['positional', 'model M {\n  input text: tokens(vocab = 10, max_len = 8)\n  output y\n  embedding dim = 4\n  positional sinusoidal\n  linear 3\n}\n'],
    ['attention inside residual', 'model M {\n  input text: tokens(vocab = 10)\n  output y\n  embedding dim = 4\n  residual { attention self, heads = 2 }\n}\n'],
  ])('%s: check, compile and weights exit 0', async (_, text) => {
    const file = specFile(text);
    for (const args of [['check', file], ['compile', file, '-o', join(tempDir(), 'm.ts')], ['weights', file, '--json']]) {
      const r = await nnc(args);
      expect(r.code, r.stderr).toBe(0);
    }
  });
  it('a non-causal self-attention in a model with decode is E0513 at the decode statement', async () => {
    const text = 'model M {\n  input text: tokens(vocab = 10)\n  output y\n  embedding dim = 4\n  attention self\n  linear 10\n  decode greedy\n}\n';
    const file = specFile(text);
    const diags = expectSpecErrors(await nnc(['check', file]), file);
    expect(diags.map((d) => [d.code, d.line])).toEqual([['E0513', 7]]);
    expect(diags[0].message).toMatch(/attends to later tokens/);
  });
});

// ───────────── usage ─────────────

describe.concurrent('usage errors exit 2', () => {
  const lstm = 'test/fixtures/lstm/model.nn';
  it.each([
    ['no arguments', [], /no command/],
    ['an unknown command', ['build', lstm], /unknown command 'build'/],
    ['a command without a file', ['compile'], /needs a \.nn file/],
    ['a nonexistent file', ['compile', 'no/such/file.nn'], /cannot read 'no\/such\/file\.nn'/],
    ['a nonexistent file (check)', ['check', 'nope.nn'], /cannot read 'nope\.nn'/],
    ['a nonexistent file (weights)', ['weights', 'nope.nn', '--json'], /cannot read 'nope\.nn'/],
    ['a directory as the file', ['check', 'test/fixtures'], /cannot read 'test\/fixtures'/],
    ['an unknown option', ['compile', lstm, '--fast'], /unknown option '--fast'/],
    ['an unknown option that starts like --emit', ['compile', lstm, '--emitter', 'ir'], /unknown option '--emitter'/],
    ['--emit=bogus', ['compile', lstm, '--emit=bogus'], /--emit must be one of ast, ir, ir-opt, ir-grad, ts; got 'bogus'/],
    ['--emit without a value', ['compile', lstm, '--emit'], /--emit must be one of/],
    ['-o without a value', ['compile', lstm, '-o'], /-o needs a file name/],
    ['-o followed by an option', ['compile', lstm, '-o', '--emit=ir'], /-o needs a file name/],
    ['two input files', ['compile', lstm, 'test/fixtures/gru_after/model.nn'], /one \.nn file at a time/],
    ['-O3', ['compile', lstm, '-O3'], /unknown option '-O3'/],
    ['--json on compile', ['compile', lstm, '--json'], /--json belongs to 'weights'/],
    ['-o on check', ['check', lstm, '-o', 'x.ts'], /belong to 'compile'/],
    ['--emit on weights', ['weights', lstm, '--emit=ir'], /belong to 'compile'/],
    ['-o naming the input file', ['compile', lstm, '-o', lstm], /refusing to write to .*: -o names a \.nn file/],
    ['-o naming the input file by another path', ['compile', lstm, '-o', `./test/fixtures/../fixtures/lstm/model.NN`], /refusing to write/],
    ['-o naming another .nn file', ['compile', lstm, '-o', 'out.nn'], /refusing to write to 'out\.nn': -o names a \.nn file/],
    ['--emit=ir -o a .nn file', ['compile', lstm, '--emit=ir', '-o', 'x.nn'], /refusing to write to 'x\.nn'/],
    ['--format bogus', ['compile', lstm, '--format', 'wasm'], /--format must be ts or js; got 'wasm'/],
    ['--format js -o a .ts file', ['compile', lstm, '--format=js', '-o', 'x.ts'], /^nnc: --format js writes JavaScript, but -o 'x\.ts' names a TypeScript file: use -o x\.js \(or leave --format out\)$/m],
    ['--format ts -o a .mjs file', ['compile', lstm, '--format', 'ts', '-o', 'x.mjs'], /--format ts writes TypeScript, but -o 'x\.mjs' names a JavaScript file: use -o x\.ts/],
    ['-o with no module extension', ['compile', lstm, '-o', 'model.txt'], /-o 'model\.txt': cannot tell from its extension whether to write TypeScript or JavaScript .*\.ts, \.mts, \.js, \.mjs, \.cjs.*--format ts\|js/],
    ['-o a CommonJS TypeScript file', ['compile', lstm, '-o', 'model.cts'], /cannot tell from its extension/],
    ['--format with --emit', ['compile', lstm, '--format=js', '--emit=ir'], /does not go with --emit/],
  ])('%s', async (_, args, msg) => {
    const cwd = tempDir();
    for (const f of ['lstm', 'gru_after']) {
      mkdirSync(join(cwd, 'test/fixtures', f), { recursive: true });
      cpSync(join(FIXTURES, f, 'model.nn'), join(cwd, 'test/fixtures', f, 'model.nn'));
    }
    const r = await nnc(args as string[], cwd);
    expectNoCrash(r);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')[0]).toMatch(/^nnc: /);
    expect(r.stderr.split('\n')[0]).toMatch(msg);
    expect(readdirSync(cwd)).toEqual(['test']);
  });

  it.each([['--help'], ['-h'], ['compile', '--help'], ['check', 'x.nn', '-h']])('%s prints the usage and exits 0', async (...args) => {
    const r = await nnc(args);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^usage:\n/);
    for (const cmd of ['nnc compile FILE.nn', 'nnc check FILE.nn', 'nnc weights FILE.nn']) expect(r.stdout).toContain(cmd);
    expect(r.stdout).toMatch(/exit codes: 0 ok, 1 errors in the spec, 2 bad usage, 70 internal error/);
  });
});

// ───────────── weights ─────────────

describe.concurrent('nnc weights', () => {
  it.each(fixtureNames())('%s: --json equals the fixture manifest (name, shape, layer kind, load order)', async (name) => {
    const want = (JSON.parse(readFileSync(join(FIXTURES, name, 'case.json'), 'utf8')) as { weights: { name: string; shape: number[]; dtype: string; kind: string }[] }).weights;
    const r = await nnc(['weights', `test/fixtures/${name}/model.nn`, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const got = JSON.parse(r.stdout) as { name: string; shape: number[]; dtype: string; layer: string }[];
    expect(got.map((w) => ({ name: w.name, shape: w.shape, layer: w.layer }))).toEqual(want.map((w) => ({ name: w.name, shape: w.shape, layer: w.kind })));
    for (const w of got) expect(w.dtype).toBe('F32');
  });

  it('without --json: one line per tensor (name, shape, dtype, layer), a summary on stderr', async () => {
    const want = (JSON.parse(readFileSync(join(FIXTURES, 'lstm_bidir/case.json'), 'utf8')) as { weights: { name: string; shape: number[]; kind: string }[] }).weights;
    const r = await nnc(['weights', 'test/fixtures/lstm_bidir/model.nn']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(want.length);
    lines.forEach((l, i) => {
      const w = want[i];
      expect(l).toMatch(new RegExp(`^${w.name.replace(/\./g, '\\.')} +\\[${w.shape.join(', ')}\\] +F32 +${w.kind}$`));
    });
    const params = want.reduce((s, w) => s + w.shape.reduce((a, c) => a * c, 1), 0);
    expect(r.stderr).toBe(`${want.length} tensors, ${params} parameters\n`);
  });

  it('a model without weights: empty list', async () => {
    const file = specFile('model M {\n  input x: vectors(dim = 3)\n  output y\n  tanh\n}\n');
    const r = await nnc(['weights', file, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([]);
  });
});

// ───────────── -o onto the input, --version, --format js ─────────────

describe.concurrent('the spec is never overwritten', () => {
  it('-o naming the input itself (same path, symlink) exits 2 and leaves the spec as it was', async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, 'self.nn'), LSTM_SPEC);
    symlinkSync(join(cwd, 'self.nn'), join(cwd, 'link.ts'));
    for (const out of ['self.nn', join(cwd, 'self.nn'), 'link.ts']) {
      const r = await nnc(['compile', 'self.nn', '-o', out], cwd);
      expectNoCrash(r);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.split('\n')[0]).toMatch(/^nnc: refusing to write to /);
      expect(readFileSync(join(cwd, 'self.nn'), 'utf8')).toBe(LSTM_SPEC);
    }
  });

  it('through a hard link (ln spec.nn hard.ts; -o hard.ts), through the .d.ts of --format js (cp spec.nn m.d.ts), and through nnc torch -o', async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, 'spec.nn'), LSTM_SPEC);
    // (-o with a module's extension: another one is a usage error of its own, issue 19)
    linkSync(join(cwd, 'spec.nn'), join(cwd, 'hard.ts'));
    const r = await nnc(['compile', 'spec.nn', '-o', 'hard.ts'], cwd);
    expectNoCrash(r);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toBe("nnc: refusing to write to 'hard.ts': it is the input file 'spec.nn' (the same file on disk)\n");
    expect(readFileSync(join(cwd, 'spec.nn'), 'utf8')).toBe(LSTM_SPEC);
    writeFileSync(join(cwd, 'm.d.ts'), LSTM_SPEC);
    const js = await nnc(['compile', 'm.d.ts', '--format', 'js', '-o', 'm.js'], cwd);
    expectNoCrash(js);
    expect(js.code, js.stderr).toBe(2);
    expect(js.stderr).toBe("nnc: refusing to write to 'm.d.ts': it is the input file 'm.d.ts' (the same file on disk)\n");
    expect(readFileSync(join(cwd, 'm.d.ts'), 'utf8')).toBe(LSTM_SPEC);
    expect(existsSync(join(cwd, 'm.js'))).toBe(false);
    // nnc torch's module too
    linkSync(join(cwd, 'spec.nn'), join(cwd, 'hard.py'));
    const py = await nnc(['torch', 'spec.nn', '-o', 'hard.py'], cwd);
    expectNoCrash(py);
    expect(py.code, py.stderr).toBe(2);
    expect(py.stderr).toBe("nnc: refusing to write to 'hard.py': it is the input file 'spec.nn' (the same file on disk)\n");
    expect(readFileSync(join(cwd, 'spec.nn'), 'utf8')).toBe(LSTM_SPEC);
  });
});

describe.concurrent('inputs are read with a size bound', () => {
  it('nnc compile /dev/zero -o z.ts is E0007 (it died with std::bad_alloc, exit 134)', async () => {
    const cwd = tempDir();
    const r = await spawnNnc(['compile', '/dev/zero', '-o', 'z.ts'], cwd);
    expectNoCrash(r);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr.split('\n')[0]).toBe('/dev/zero:1:1: error: this file is larger than 1048576 bytes (1 MiB), the most a .nn file may hold [E0007]');
    expect(existsSync(join(cwd, 'z.ts'))).toBe(false);
  });

  it('a 10 MB spec of relus is E0007 for check and weights too', async () => {
    const file = specFile(`model M {\n  input x: vectors(dim = 8)\n  output y\n${'  relu\n'.repeat(1_500_000)}}\n`);
    for (const args of [['check', file], ['weights', file, '--json']]) {
      const diags = expectSpecErrors(await nnc(args), file);
      expect(diags.map((d) => d.code)).toEqual(['E0007']);
    }
  });
});

describe.concurrent('--version', () => {
  it('prints nnc and the package version', async () => {
    const r = await nnc(['--version']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(r.stdout).toBe(`nnc ${version}\n`);
  });
});

describe('--format js', () => {
  // issue 19: `-o model.js` without --format js wrote TypeScript into a .js file (Unexpected identifier 'as')
  it.each([
    ['--format js -o gen/lstm.js', ['--format', 'js']],
    ['-o gen/lstm.js alone (the extension says JavaScript; bin/nnc.js as a process)', []],
  ])('%s writes .js + .d.ts that a plain Node app (no TypeScript loader) runs on the cpu backend', async (_, flags) => {
    const app = tempDir();
    writeFileSync(join(app, 'package.json'), '{ "type": "module" }\n');
    mkdirSync(join(app, 'node_modules'));
    symlinkSync(ROOT, join(app, 'node_modules/nnc'), 'dir');
    const r = await (flags.length ? nnc : spawnNnc)(['compile', 'test/fixtures/lstm/model.nn', ...flags, '-o', join(app, 'gen/lstm.js')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^wrote .*gen\/lstm\.js and .*gen\/lstm\.d\.ts \(Lstm: \d+ kernels, 5 weights\)\n$/);
    const js = readFileSync(join(app, 'gen/lstm.js'), 'utf8');
    expect(js).toContain(`from 'nnc/runtime'`);
    expect(js).not.toMatch(/: number\b|\bas const\b|\binterface\b/);
    const dts = readFileSync(join(app, 'gen/lstm.d.ts'), 'utf8');
    expect(dts).toMatch(/export declare function createLstm\(options\?: __nnc\.CreateOptions\): Promise<LstmModel>;/);
    expect(dts).toMatch(/export interface LstmInputs/);
    const { weights, case: c } = loadCase('lstm');
    writeFileSync(join(app, 'weights.safetensors'), weights);
    const inputs = Object.fromEntries(Object.entries(toInputs(c)).map(([k, v]) => [k, Array.isArray(v) ? v : { ...(v as object), data: Array.from((v as { data: ArrayLike<number> }).data) }]));
    writeFileSync(join(app, 'case.json'), JSON.stringify({ inputs }));
    writeFileSync(join(app, 'main.js'), `import { readFileSync } from 'node:fs';
import { createModel } from './gen/lstm.js';
const { inputs } = JSON.parse(readFileSync(new URL('./case.json', import.meta.url), 'utf8'));
for (const v of Object.values(inputs)) if (v && !Array.isArray(v)) v.data = Int32Array.from(v.data);
const model = await createModel({ backend: 'cpu' });
model.loadWeights(readFileSync(new URL('./weights.safetensors', import.meta.url)));
const y = (await model.forward(inputs)).y;
process.stdout.write(JSON.stringify({ backend: model.backend, shape: y.shape, data: Array.from(y.data) }));
`);
    const run = await new Promise<Run>((res, rej) => {
      const p = spawn(process.execPath, ['main.js'], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      p.on('error', rej);
      p.on('close', (code) => res({ code, stdout, stderr }));
    });
    expect(run.code, run.stderr).toBe(0);
    const got = JSON.parse(run.stdout) as { backend: string; shape: number[]; data: number[] };
    expect(got.backend).toBe('cpu');
    expect(got.shape).toEqual(c.outputs.y.shape);
    expect(maxAbsDiff(Float32Array.from(got.data), c.outputs.y.data)).toBeLessThanOrEqual(1e-5);
  });
});

describe('the nnc binary (bin/nnc.js in a child process)', () => {
  it('exit codes 0, 1 and 2, output on the right stream, no stack trace', async () => {
    const ok = await spawnNnc(['check', 'test/fixtures/lstm/model.nn']);
    expect([ok.code, ok.stdout, ok.stderr]).toEqual([0, '', '']);
    const bad = await spawnNnc(['check', specFile('model M {\n  input x: tokens(vocab = 5)\n  lstn 4\n}\n')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/error: unknown layer 'lstn'.*\[E0201\]/);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
    const usage = await spawnNnc(['compile']);
    expect(usage.code).toBe(2);
    const version = await spawnNnc(['--version']);
    expect([version.code, version.stdout.trim()]).toEqual([0, expect.stringMatching(/^nnc \d+\.\d+\.\d+$/)]);
    const dir = tempDir();
    const out = join(dir, 'lstm.ts');
    const wrote = await spawnNnc(['compile', 'test/fixtures/lstm/model.nn', '-o', out]);
    expect(wrote.code, wrote.stderr).toBe(0);
    expect(wrote.stdout).toMatch(/^wrote /);
    expect(existsSync(out)).toBe(true);
  });
});
