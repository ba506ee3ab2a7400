/**
 * backend 'onnxruntime': a generated module runs its ONNX graphs on onnxruntime-node, with nnc's
 * generate() / stream() (greedy, beam with nBest, seeded sampling) on top. For every fixture and
 * example that generates, and a few that do not: forward equals the wasm backend's within 1e-4, and
 * generate() gives the wasm backend's ids (scores within 1e-4). Its errors are checked too.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { lower } from '../src/driver.ts';
import { NncError } from '../src/runtime/errors.ts';
import { createTrainer } from '../src/train/index.ts';
import { compileAndImport, FIXTURES, indexNames, maxAbsDiff, OUT, plainResult, ROOT, SCORE_TOL } from './helpers.ts';
import { inputsFor, randomWeights, safetensors, type PyTensor } from './torch-helpers.ts';

interface Spec {
  id: string;
  file: string;
  text: string;
  weights: Uint8Array;
  inputs: Record<string, PyTensor>;
  generates: boolean;
}

function collect(): Spec[] {
  const specs: Spec[] = [];
  readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.nn')).sort().forEach((f, i) => {
    const file = `examples/${f}`;
    const text = readFileSync(join(ROOT, file), 'utf8');
    // an n-gram model (examples/ngram.nn) has no graphs to run
    const ir = lower(text, file).models?.[0];
    if (!ir) return;
    const shipped = join(ROOT, 'examples/weights', `${basename(f, '.nn')}.safetensors`);
    specs.push({ id: file, file, text, weights: existsSync(shipped) ? readFileSync(shipped) : safetensors(randomWeights(ir.weights, 4000 + i)), inputs: inputsFor(ir, 5000 + i), generates: ir.generate.ok });
  });
  for (const name of ['seq2seq-index.json', 'lm-index.json', 'transformer-index.json'].flatMap(indexNames)) {
    const file = `test/fixtures/${name}/model.nn`;
    const text = readFileSync(join(ROOT, file), 'utf8');
    const c = JSON.parse(readFileSync(join(FIXTURES, name, 'case.json'), 'utf8')) as { inputs: Record<string, PyTensor> };
    specs.push({ id: name, file, text, weights: readFileSync(join(FIXTURES, name, 'weights.safetensors')), inputs: c.inputs, generates: lower(text, file).models![0]!.generate.ok });
  }
  return specs;
}

const tensors = (inputs: Record<string, PyTensor>) =>
  Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, { data: v.dtype === 'int32' ? Int32Array.from(v.data) : Float32Array.from(v.data), shape: v.shape, lengths: v.lengths }]));

const OPTIONS = [
  { strategy: 'greedy', maxLen: 6 },
  { strategy: 'beam', beam: 3, nBest: 2, lengthNormalize: true, maxLen: 5 },
  { strategy: 'sample', seed: 11, temperature: 0.8, topK: 4, maxLen: 6 },
];

describe('backend onnxruntime', () => {
  const specs = collect();
  it('covers the examples and the fixtures that generate', () => {
    expect(specs.filter((s) => s.generates).length).toBeGreaterThanOrEqual(20);
  });

  describe.each(specs.map((s) => [s.id, s] as const))('%s', (_id, s) => {
    it(`forward equals wasm within 1e-4${s.generates ? '; generate() gives wasm\'s ids (greedy, beam with nBest, seeded sampling)' : ''}`, async () => {
      const mod = await compileAndImport(`ort-${s.id.replace(/\W/g, '_')}`, s.text, s.file);
      const [a, b] = [await mod.createModel({ backend: 'onnxruntime' }), await mod.createModel({ backend: 'wasm', threads: 1 })];
      try {
        expect(a.backend).toBe('onnxruntime');
        a.loadWeights(s.weights);
        b.loadWeights(s.weights);
        const inputs = tensors(s.inputs);
        const [x, y] = [Object.values(await a.forward(inputs))[0] as { data: Float32Array; shape: number[] }, Object.values(await b.forward(inputs))[0] as { data: Float32Array; shape: number[] }];
        expect(x.shape).toEqual(y.shape);
        expect(maxAbsDiff(x.data, y.data)).toBeLessThanOrEqual(1e-4);
        if (!s.generates) return;
        const first = Object.keys(inputs)[0]!;
        const vocab = a.manifest.inputs[a.manifest.inputs.length - 1].vocab as number;
        for (const o of OPTIONS) {
          const opts = { ...o, ...(a.manifest.decode?.bos === undefined && a.manifest.inputs.length > 1 ? { bos: 1 % vocab } : {}) };
          const [p, q] = [await a.generate({ [first]: inputs[first] }, opts), await b.generate({ [first]: inputs[first] }, opts)];
          expect(plainResult(p).ids, JSON.stringify(opts)).toEqual(plainResult(q).ids);
          expect(maxAbsDiff(p.scores, q.scores), JSON.stringify(opts)).toBeLessThanOrEqual(SCORE_TOL);
          if (o.nBest) expect(p.nBest.map((r: { ids: number[] }[]) => r.map((h) => h.ids))).toEqual(q.nBest.map((r: { ids: number[] }[]) => r.map((h) => h.ids)));
        }
        // stream() yields the same as generate()
        let last: unknown;
        const it = a.stream({ [first]: inputs[first] }, OPTIONS[0]);
        for (;;) {
          const r = await it.next();
          if (r.done) {
            last = r.value;
            break;
          }
        }
        expect(plainResult(last as { ids: number[][]; scores: number[] })).toEqual(plainResult(await a.generate({ [first]: inputs[first] }, OPTIONS[0])));
      } finally {
        a.dispose();
        b.dispose();
      }
    }, 120_000);
  });

  it("'onnxruntime' is onnxruntime-node in Node; 'onnxruntime-web' runs onnxruntime-web's WebAssembly build there too, equal to wasm (forward 1e-4, generate() ids), with the exporter from nnc/onnx", async () => {
    const s = specs.find((x) => x.id === 's2s_additive_bahdanau')!;
    const mod = await compileAndImport('ort-web-node', s.text, s.file);
    const exporter = await import('nnc/onnx');
    const models = [await mod.createModel({ backend: 'onnxruntime' }), await mod.createModel({ backend: 'onnxruntime-web', exporter, threads: 1 }), await mod.createModel({ backend: 'wasm', threads: 1 })];
    try {
      expect(models.map((m) => [m.backend, m.device])).toEqual([['onnxruntime', 'onnxruntime-node (cpu)'], ['onnxruntime-web', 'onnxruntime-web (wasm)'], ['wasm', expect.any(String)]]);
      const inputs = tensors(s.inputs);
      const outs = [];
      for (const m of models) {
        m.loadWeights(s.weights);
        outs.push(Object.values(await m.forward(inputs))[0] as { data: Float32Array });
      }
      expect(maxAbsDiff(outs[1]!.data, outs[2]!.data)).toBeLessThanOrEqual(1e-4);
      const first = Object.keys(inputs)[0]!;
      const ids = [];
      for (const m of models) ids.push(plainResult(await m.generate({ [first]: inputs[first] }, OPTIONS[1])).ids);
      expect(ids[1]).toEqual(ids[2]);
      expect(ids[0]).toEqual(ids[2]);
    } finally {
      for (const m of models) m.dispose();
    }
    await expect(mod.createModel({ backend: 'onnxruntime-web', onnxruntime: {} })).rejects.toThrow(/not onnxruntime-web/);
    await expect(mod.createModel({ backend: 'onnxruntime-web', exporter: {} })).rejects.toThrow(/not nnc's ONNX exporter.*nnc\/onnx/);
    await expect(mod.createModel({ backend: 'onnxruntime-web', worker: true })).rejects.toThrow(/worker is not for backend 'onnxruntime-web'.*ort\.env\.wasm\.proxy/);
  }, 120_000);

  it('refuses what it cannot do, naming the fix', async () => {
    const s = specs.find((x) => x.id === 'examples/tiny_lm.nn')!;
    const mod = await compileAndImport('ort-errors', s.text, s.file);
    const m = await mod.createModel({ backend: 'onnxruntime', onnxruntime: ort });
    await expect(m.forward(tensors(s.inputs))).rejects.toThrow(/forward\(\) before loadWeights\(\)/);
    // no training on ONNX Runtime: vjp, saveWeights and a trainer's step name the backend and the ones that train
    const untrainable = /not supported on the onnxruntime backend.*'wasm' or 'cpu'/;
    await expect(m.vjp(tensors(s.inputs), {})).rejects.toThrow(NncError);
    await expect(m.vjp(tensors(s.inputs), {})).rejects.toThrow(untrainable);
    expect(() => m.saveWeights()).toThrow(untrainable);
    const trainer = createTrainer(m, { loss: 'cross_entropy', optimizer: { kind: 'sgd', lr: 0.1 } });
    await expect(trainer.step({ inputs: tensors(s.inputs), targets: { data: new Int32Array(1), shape: [1] } })).rejects.toThrow(/^trainer\.step\(\) is not supported on the onnxruntime backend/);
    expect(() => m.loadWeights(new Uint8Array(16))).toThrow(/safetensors/);
    m.dispose();
    await expect(m.forward(tensors(s.inputs))).rejects.toThrow(/disposed/);
    await expect(mod.createModel({ backend: 'onnxruntime', onnxruntime: {} })).rejects.toThrow(/not onnxruntime-node/);
    await expect(mod.createModel({ backend: 'onnxruntime', threads: 1e6 })).rejects.toThrow(/more than this machine's/);
    await expect(mod.createModel({ backend: 'onnxruntime', worker: true })).rejects.toThrow(/worker is not for backend 'onnxruntime'/);
    const tagger = specs.find((x) => x.id === 'examples/tagger.nn')!;
    const t = await (await compileAndImport('ort-errors-tagger', tagger.text, tagger.file)).createModel({ backend: 'onnxruntime' });
    t.loadWeights(tagger.weights);
    await expect(t.generate(tensors(tagger.inputs))).rejects.toThrow(/cannot generate/);
    t.dispose();
  });

  it('runs from the built package in plain Node (nnc compile --format js; the runtime imports the exporter from nnc\'s dist)', () => {
    const dir = join(OUT, 'ort-js');
    mkdirSync(dir, { recursive: true });
    const c = spawnSync(process.execPath, [join(ROOT, 'bin/nnc.js'), 'compile', join(ROOT, 'examples/tiny_lm.nn'), '--format', 'js', '-o', join(dir, 'tiny_lm.js')], { encoding: 'utf8' });
    expect(c.status, c.stderr).toBe(0);
    writeFileSync(join(dir, 'run.mjs'), `import { readFileSync } from 'node:fs';
import { createModel } from './tiny_lm.js';
const w = readFileSync(${JSON.stringify(join(ROOT, 'examples/weights/tiny_lm.safetensors'))});
const out = [];
for (const backend of ['onnxruntime', 'wasm']) {
  const m = await createModel({ backend });
  m.loadWeights(w);
  const r = await m.generate({ text: { data: [5, 6, 7, 8, 9, 0], shape: [2, 3], lengths: [3, 2] } }, { strategy: 'beam', beam: 3, maxLen: 8 });
  out.push({ backend: m.backend, ids: r.ids.map((x) => Array.from(x)) });
  m.dispose();
}
console.log(JSON.stringify(out));
`);
    const r = spawnSync(process.execPath, [join(dir, 'run.mjs')], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const [a, b] = JSON.parse(r.stdout) as { backend: string; ids: number[][] }[];
    expect(a!.backend).toBe('onnxruntime');
    expect(a!.ids).toEqual(b!.ids);
    expect(a!.ids[0]!.length).toBeGreaterThan(0);
  }, 120_000);
});
