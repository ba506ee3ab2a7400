/**
 * NaN and ±Infinity in a `vectors` input (issue 19, item 7): before this check they gave finite
 * outputs on `gpu` and NaN elsewhere. Now every backend — and a model in a worker thread — refuses
 * them at a valid step with the same NncError naming the input, row, step and feature;
 * `allowNonFinite: true` accepts them; padded steps (past a row's length) are not checked.
 *
 * The fixture (test/fixtures/lstm_bidir_layers3_vectors: x [3, 5, 6], lengths [5, 3, 1]) is PyTorch's:
 * with finite inputs every backend still matches it, so the check costs no correct input anything.
 */
import { describe, expect, it } from 'vitest';
import { NncError } from '../src/runtime/errors.ts';
import { compileAndImport, decodingRuns, DECODE_TOL, loadCase, maxAbsDiff } from './helpers.ts';

const NAME = 'lstm_bidir_layers3_vectors';
const { spec, weights, case: c } = loadCase(NAME);
const mod = await compileAndImport(NAME, spec);
const backends = [...new Set((await decodingRuns()).map(([b]) => b))];
const x = c.inputs['x']!;
const [B, T, D] = x.shape as [number, number, number];

/** The fixture's input with `v` at (row, step, feature), as a Float32Array or Float64Array. */
function withValue(row: number, step: number, feature: number, v: number, Arr: Float32ArrayConstructor | Float64ArrayConstructor = Float32Array) {
  const data = Arr.from(x.data);
  data[(row * T + step) * D + feature] = v;
  return { x: { data, shape: x.shape, lengths: x.lengths } };
}

async function forward(backend: string, inputs: unknown, options: Record<string, unknown> = {}) {
  const m = await mod.createModel({ backend, ...options });
  try {
    await m.loadWeights(weights);
    return await m.forward(inputs);
  } finally {
    m.dispose();
  }
}

async function error(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error, got a result');
}

const message = (v: string, row: number, step: number, feature: number) =>
  `input 'x' has ${v} at row ${row}, step ${step}, feature ${feature}: inputs must be finite at valid steps (padded steps past lengths[${row}] are not read); replace it, or pass createModel({ allowNonFinite: true }) to accept it (results then differ between backends)`;

describe.each([...backends.map((b) => [b, {}] as const), ['wasm', { worker: true }] as const])('non-finite vectors inputs on %s %j', (backend, extra) => {
  it.each([
    ['NaN', NaN, 0, 4, 5],
    ['Infinity', Infinity, 1, 2, 0],
    ['-Infinity', -Infinity, 2, 0, 3],
  ] as const)('%s at a valid step is an NncError naming the input, row, step and feature', async (shown, v, row, step, feature) => {
    const e = await error(forward(backend, withValue(row, step, feature, v), extra));
    expect(e).toBeInstanceOf(NncError);
    expect(e.message).toBe(message(shown, row, step, feature));
  });

  it('a float64 value beyond float32 range is refused too (it would become Infinity)', async () => {
    const e = await error(forward(backend, withValue(1, 0, 2, 1e39, Float64Array), extra));
    expect(e.message).toBe(message("1e+39 (beyond float32's range)", 1, 0, 2));
  });

  it('padded steps are not checked; finite inputs still match PyTorch', async () => {
    // row 1 has 3 valid steps, row 2 one: steps 3 and 1 are padding
    const padded = withValue(1, 3, 0, NaN);
    (padded.x.data as Float32Array)[(2 * T + 1) * D + 4] = Infinity;
    await expect(forward(backend, padded, extra)).resolves.toBeDefined();
    const out = await forward(backend, { x: { data: Float32Array.from(x.data), shape: x.shape, lengths: x.lengths } }, extra);
    expect(maxAbsDiff(out.y.data, c.outputs['y']!.data)).toBeLessThanOrEqual(DECODE_TOL[backend] ?? 1e-4);
  });

  it('allowNonFinite: true accepts them', async () => {
    await expect(forward(backend, withValue(0, 0, 0, NaN), { ...extra, allowNonFinite: true })).resolves.toBeDefined();
  });
});

it('nested-array inputs are checked the same way', async () => {
  const rows = Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => x.data.slice((b * T + t) * D, (b * T + t + 1) * D)));
  rows[0]![1]![2] = NaN;
  const e = await error(forward('cpu', { x: rows }));
  expect(e.message).toBe(message('NaN', 0, 1, 2));
});
