/**
 * Compiles that crashed or ran for minutes (issue 18, item 5), fed as the issue writes them: long
 * chains of elementwise layers compile (no recursion per statement: fuse bounds how deep one
 * kernel inlines a chain) and compute what the layers say; the size limits are located errors with
 * their stable codes. The compile-time targets are measured in bench/compile.ts, not here.
 */
import { describe, expect, it } from 'vitest';
import { compile } from '../src/driver.ts';
import { MAX_INLINE_DEPTH } from '../src/passes/fuse.ts';
import { compileAndImport } from './helpers.ts';

const chain = (layer: string, n: number) => `model Chain {\n  input x: vectors(dim = 4)\n  output y\n${`  ${layer}\n`.repeat(n)}}\n`;
const x = { data: Float32Array.from([-2, -0.5, 0, 0.25, 1, 3, -1, 0.5]), shape: [1, 2, 4] };

describe('long chains of elementwise layers compile (they overflowed the stack: exit 70)', () => {
  it.each([
    ['relu', 1300],
    ['relu', 1250],
    ['tanh', 2000],
    ['gelu', 3000],
    ['residual { relu }', 1200],
  ])('%s × %i', (layer, n) => {
    const r = compile(chain(layer, n), 'chain.nn');
    expect(r.diagnostics).toEqual([]);
    expect(r.output).toBeDefined();
    // a kernel inlines at most MAX_INLINE_DEPTH ops of a chain
    expect(r.kernels![0]).toBeLessThanOrEqual(Math.ceil((layer.startsWith('residual') ? 2 * n : n) / MAX_INLINE_DEPTH) + 2);
  });

  it('1,300 relus compute relu(x) and 2,000 tanhs compute tanh applied 2,000 times (on cpu and wasm)', async () => {
    const relu = await compileAndImport('chain_relu_1300', chain('relu', 1300));
    const tanh = await compileAndImport('chain_tanh_2000', chain('tanh', 2000));
    const want = (f: (v: number) => number, k: number) => Array.from(x.data, (v) => {
      for (let i = 0; i < k; i++) v = Math.fround(f(v));
      return v;
    });
    for (const backend of ['cpu', 'wasm']) {
      for (const [mod, f, k, tol] of [[relu, (v: number) => Math.max(v, 0), 1300, 0], [tanh, Math.tanh, 2000, 1e-5]] as const) {
        const m = await mod.createModel({ backend });
        m.loadWeights({});
        const y = (await m.forward({ x })).y.data as Float32Array;
        const w = want(f, k);
        y.forEach((v, i) => expect(Math.abs(v - w[i]!)).toBeLessThanOrEqual(tol));
        m.dispose();
      }
    }
  });
});

describe('size limits are located errors (docs/language.md, Limits)', () => {
  it('10,001 layers in a model: E0415 at layer 10,001, which the message names (no repeat is blamed)', () => {
    const text = chain('relu', 10_001);
    const r = compile(text, 'big.nn', 'ir');
    expect(r.output).toBeUndefined();
    expect(r.diagnostics.map((d) => [d.code, d.span.line, d.message])).toEqual([['E0415', 10_004, 'the model has more than 10000 layers: this is layer 10001']]);
  });

  it('repeat 97 { repeat 1000 { linear 8 } }: E0415 at the outer count, at once', () => {
    const text = 'model M {\n  input x: vectors(dim = 8)\n  output y\n  repeat 97 { repeat 1000 { linear 8 } }\n}\n';
    const t0 = performance.now();
    const r = compile(text, 'rep.nn', 'ir');
    expect(performance.now() - t0).toBeLessThan(30_000);
    expect(r.diagnostics.map((d) => [d.code, d.span.line, d.span.col, d.message])).toEqual([
      ['E0415', 4, 10, 'this repeat expands the model to more than 10000 layers (nested repeat counts multiply)'],
    ]);
  });

  it("layers of several models add up: E0415 says it is the file's models", () => {
    const model = (i: number) => `model M${i} {\n  input x: vectors(dim = 8)\n  output y\n  repeat 1000 { relu; relu; relu; relu }\n}\n`;
    const r = compile([0, 1, 2].map(model).join(''), 'three.nn', 'ir');
    expect(r.diagnostics.map((d) => [d.code, d.span.line, d.message])).toEqual([['E0415', 14, "this repeat expands this file's models to more than 10000 layers in all (nested repeat counts multiply)"]]);
  });

  it('2,000 two-layer models (128 KB): E0417 at model 1,001', () => {
    const text = Array.from({ length: 2000 }, (_, i) => `model M${i} {\n  input x: vectors(dim = 8)\n  output y\n  linear 8\n  relu\n}\n`).join('');
    const r = compile(text, 'many.nn', 'ir');
    expect(r.diagnostics.map((d) => [d.code, d.span.line, d.message])).toEqual([['E0417', 6001, 'this file declares more than 1000 models: this is model 1001']]);
  });

  it.each([
    ['2 M relus', '  relu\n'.repeat(2_000_000)],
    ['5 M semicolons', ';'.repeat(5_000_000)],
  ])('a 10 MB spec (%s) is E0007 at its start, not E0415 about a repeat it does not have', (_, body) => {
    const text = `model M {\n  input x: vectors(dim = 8)\n  output y\n${body}}\n`;
    const r = compile(text, 'huge.nn', 'ir');
    expect(r.diagnostics.map((d) => [d.code, d.span.line, d.span.col, d.message])).toEqual([['E0007', 1, 1, 'this file is larger than 1048576 bytes (1 MiB), the most a .nn file may hold']]);
  });
});
