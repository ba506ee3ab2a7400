/**
 * Every fixture (PyTorch ground truth, test/fixtures/make_fixtures.py) compiled by nnc and run on
 * each backend: wasm (nnc's WebAssembly SIMD GEMMs) and cpu within 1e-5 of PyTorch, the gpu.js backends within 1e-4. The `gpu` backend
 * (headless-gl) needs the `gl` package and a display (xvfb-run); CI sets NNC_REQUIRE_GPU=1 so that
 * a missing headless-gl fails the run instead of skipping it.
 */
import { describe, expect, it } from 'vitest';
import { compileAndImport, fixtureNames, headlessGlAvailable, loadCase, maxAbsDiff, toInputs } from './helpers.ts';

const TOL: Record<string, number> = { cpu: 1e-5, wasm: 1e-5, webasm: 1e-4, gpu: 1e-4 };
const gl = await headlessGlAvailable();
if (process.env.NNC_REQUIRE_GPU && !gl) throw new Error('NNC_REQUIRE_GPU is set but headless-gl is unavailable (is the gl package built, and is this run under xvfb-run?)');
// [backend, optimisation level]: every backend fully optimised, plus the unfused levels on cpu and
// webasm, which check that each pass preserves the numbers.
const runs: [string, 0 | 1 | 2][] = [['wasm', 2], ['wasm', 0], ['cpu', 2], ['cpu', 1], ['cpu', 0], ['webasm', 2], ['webasm', 0], ...(gl ? [['gpu', 2] as [string, 2]] : [])];

describe.each(fixtureNames())('%s', (name) => {
  const { spec, weights, case: c } = loadCase(name);
  it.each(runs)('matches PyTorch on %s at -O%d', async (backend, level) => {
    const mod = await compileAndImport(name, spec, `test/fixtures/${name}/model.nn`, level);
    const model = await mod.createModel({ backend });
    try {
      expect(model.backend).toBe(backend);
      model.loadWeights(weights);
      const out = await model.forward(toInputs(c));
      for (const [key, want] of Object.entries(c.outputs)) {
        expect(out[key].shape).toEqual(want.shape);
        const err = maxAbsDiff(out[key].data, want.data);
        expect(err, `max |nnc - torch| for ${key}`).toBeLessThanOrEqual(TOL[backend]);
      }
    } finally {
      model.dispose();
    }
  });
});
