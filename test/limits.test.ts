/**
 * Error and warning paths that the other suites do not reach: a tensor too large for float32
 * indexing on a gpu.js backend, and the W0598 warning for a decode statement.
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
  it('compiles with warning W0598 at the decode statement (generate() is not emitted yet)', () => {
    const text = 'model LM {\n  input text: tokens(vocab = 5)\n  embedding 3\n  lstm 4\n  linear 5\n  decode greedy\n}\n';
    const r = compile(text, 'lm.nn', 'ts');
    expect(r.output).toBeDefined();
    expect(r.diagnostics.map((d) => [d.code, d.severity, d.span.line, d.span.col])).toEqual([['W0598', 'warning', 6, 3]]);
  });
});
