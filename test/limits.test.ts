/**
 * Error and warning paths that the other suites do not reach: a tensor too large for float32
 * indexing on a gpu.js backend, and a decode statement on a model that cannot generate.
 */
import { describe, expect, it } from 'vitest';
import { compile } from '../src/driver.ts';
import { compileAndImport, loadCase } from './helpers.ts';

describe('gpu.js backends refuse tensors past exact float32 indexing', () => {
  it('webasm: an embedding output over 2^24 elements is an error naming the size and the fix', async () => {
    const { spec, weights } = loadCase('lstm');
    const mod = await compileAndImport('limits_lstm', spec);
    const model = await mod.createModel({ backend: 'webasm' });
    try {
      model.loadWeights(weights);
      const T = (1 << 22) + 1; // embedding dim 4: 4·T > 2^24 elements
      const ids = new Int32Array(T);
      await expect(model.forward({ text: { data: ids, shape: [1, T] } })).rejects.toThrow(/too large for the 'webasm' backend.*backend: 'cpu'/);
    } finally {
      model.dispose();
    }
  });
});

describe('decode', () => {
  const lm = (layers: string, input = 'tokens(vocab = 5)') => `model LM {\n  input text: ${input}\n${layers}\n  decode greedy\n}\n`;
  it('compiles a language model with decode without any diagnostic', () => {
    const r = compile(lm('  embedding 3\n  lstm 4\n  linear 5'), 'lm.nn', 'ts');
    expect(r.output).toBeDefined();
    expect(r.diagnostics).toEqual([]);
  });
  it.each([
    ['a bidirectional layer', '  embedding 3\n  lstm 4, bidirectional\n  linear 5', 'tokens(vocab = 5)', /'lstm0' is bidirectional/],
    ['a pooled output', '  embedding 3\n  lstm 4\n  pool max\n  linear 5', 'tokens(vocab = 5)', /no time axis/],
    ['feature-vector input', '  lstm 4\n  linear 5', 'vectors(dim = 3)', /feature vectors/],
  ])('E0513 at the decode statement for %s', (_what, layers, input, msg) => {
    const text = lm(layers, input);
    const r = compile(text, 'lm.nn', 'ts');
    expect(r.output).toBeUndefined();
    const errs = r.diagnostics.filter((d) => d.severity === 'error');
    const line = text.split('\n').findIndex((l) => l.includes('decode greedy')) + 1;
    expect(errs.map((d) => [d.code, d.span.line, d.span.col])).toEqual([['E0513', line, 3]]);
    expect(errs[0].message).toMatch(msg);
  });
});
