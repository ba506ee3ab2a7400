/**
 * `nnc torch`: for every spec in examples/ and in the test fixtures (test/fixtures/*, the seq2seq, LM
 * and Transformer indexes) plus one spec of names Python reserves, the emitted PyTorch module
 *  - compiles (py_compile) and is clean under pyflakes,
 *  - has a state_dict() with exactly the names and shapes of the manifest (`nnc weights --json`),
 *  - computes nnc's forward (the generated TypeScript module on the `cpu` backend) within 1e-5 on the
 *    same weights and padded inputs (fixtures: also the PyTorch references of their case.json),
 *  - and generate() gives nnc's ids (scores within 1e-4, the n-best lists too) for every spec with a
 *    decode statement: greedy, beam (with lengthNormalize and nBest), and seeded sampling with
 *    temperature and topK, which needs nnc's own PRNG and sampling rule in Python.
 * All Python runs in one process (torch_check.py). Needs a Python with torch (Debian's python3-torch);
 * skipped without one, except under NNC_REQUIRE_PYTHON (CI), where that is a failure.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { lower } from '../src/driver.ts';
import { modelPrefixes } from '../src/codegen/module.ts';
import { compileAndImport, FIXTURES, indexNames, maxAbsDiff, ROOT } from './helpers.ts';
import { emitPython, inputsFor, type PyJob, type PyResult, type PyTensor, randomWeights, runPythonJobs, safetensors, TORCH_OUT, torchPython } from './torch-helpers.ts';

const python = torchPython();

interface Spec {
  id: string;
  file: string;
  text: string;
  /** Which model of the file (default: the first). */
  model?: string;
  weights: string;
  inputs: Record<string, PyTensor>;
  /** PyTorch's own outputs (fixtures). */
  reference?: { shape: number[]; data: number[] };
  generate: Record<string, unknown>[];
}

/** Names Python reserves, a model named like a prelude class, and a file name with quotes and a backslash. */
const HOSTILE = `// every name here means something else in Python
model Tensor {
  input lambda: tokens(vocab = 7, max_len = 6)
  output train
  for: embedding dim = 4
  _x: gru hidden = 4
  state_dict: linear 6
  residual { forward: linear 6; tanh }
  training: attention self, causal, score = general
  Model: linear 7
  log_softmax
  decode sample, top_k = 3, max_len = 5
}
model Context {
  input self: vectors(dim = 3)
  output y
  linear 2
  pool mean
}
`;

/** generate() options (nnc's camelCase names) for a spec with a decode statement. */
function generateOptions(refs: { opts: Record<string, unknown> }[] | undefined, vocabSmall: boolean): Record<string, unknown>[] {
  const base = refs?.[0]?.opts ? { maxLen: refs[0].opts.maxLen, bos: refs[0].opts.bos, eos: refs[0].opts.eos } : { maxLen: vocabSmall ? 6 : 4 };
  return [
    ...(refs ?? []).map((r) => r.opts),
    { ...base, strategy: 'greedy' },
    { ...base, strategy: 'beam', beam: 3, lengthNormalize: true, nBest: 3 },
    { ...base, strategy: 'sample', seed: 7, temperature: 0.7, topK: 3 },
    { ...base, strategy: 'sample', seed: 1234567, temperature: 1.3 },
  ];
}

const SNAKE: Record<string, string> = { maxLen: 'max_len', topK: 'top_k', lengthNormalize: 'length_normalize', nBest: 'n_best' };
const snake = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [SNAKE[k] ?? k, v]));

function collectSpecs(): Spec[] {
  const specs: Spec[] = [];
  const wdir = join(TORCH_OUT, 'weights');
  mkdirSync(wdir, { recursive: true });
  const withRandomWeights = (id: string, file: string, text: string, seed: number, model?: string) => {
    const models = lower(text, file).models!;
    const ir = model ? models.find((m) => m.name === model)! : models[0]!;
    const shipped = join(ROOT, 'examples/weights', `${basename(file, '.nn')}.safetensors`);
    let weights = shipped;
    if (!existsSync(shipped) || model) {
      weights = join(wdir, `${id.replace(/\W/g, '_')}.safetensors`);
      writeFileSync(weights, safetensors(randomWeights(ir.weights, seed)));
    }
    const vocab = ir.graph.get(ir.graph.outputs[0]!.node).shape.at(-1) as number;
    return { id, file, text, model, weights, inputs: inputsFor(ir, seed + 1), generate: ir.decode ? generateOptions(undefined, vocab <= 100) : [] };
  };
  readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.nn')).sort().forEach((f, i) => {
    const text = readFileSync(join(ROOT, 'examples', f), 'utf8');
    // n-gram models (examples/ngram.nn, iso_dates.nn) have no PyTorch module: nnc torch names them and leaves them out (test/text.test.ts)
    if (lower(text, `examples/${f}`).models!.length > 0) specs.push(withRandomWeights(`examples/${f}`, `examples/${f}`, text, 1000 + i));
  });
  const indexes = ['index.json', 'seq2seq-index.json', 'lm-index.json', 'transformer-index.json'];
  for (const name of indexes.flatMap(indexNames)) {
    const c = JSON.parse(readFileSync(join(FIXTURES, name, 'case.json'), 'utf8')) as {
      inputs: Record<string, PyTensor>; outputs: Record<string, { shape: number[]; data: number[] }>; generate?: { opts: Record<string, unknown> }[];
    };
    const file = `test/fixtures/${name}/model.nn`;
    const text = readFileSync(join(ROOT, file), 'utf8');
    specs.push({
      id: name, file, text, weights: join(FIXTURES, name, 'weights.safetensors'), inputs: c.inputs, reference: Object.values(c.outputs)[0],
      generate: lower(text, file).models![0]!.decode ? generateOptions(c.generate, true) : [],
    });
  }
  const hostileDir = join(TORCH_OUT, 'hostile');
  mkdirSync(hostileDir, { recursive: true });
  const hostileFile = join(hostileDir, 'a "quoted" \\ name.nn');
  writeFileSync(hostileFile, HOSTILE);
  specs.push(withRandomWeights('hostile', hostileFile, HOSTILE, 77));
  specs.push(withRandomWeights('hostile (second model)', hostileFile, HOSTILE, 78, 'Context'));
  return specs;
}

/** nnc's forward (and generate) on the cpu backend: the numbers the PyTorch module must reproduce. */
async function nncRun(spec: Spec): Promise<{ output: { shape: number[]; data: Float32Array }; generate: { ids: number[][]; scores: number[]; nBest?: { ids: number[]; score: number }[][] }[]; manifest: { name: string; shape: number[] }[] }> {
  const mod = await compileAndImport(`torch-${spec.id.replace(/\W/g, '_')}`, spec.text, spec.file);
  const names = lower(spec.text, spec.file).models!.map((m) => m.name);
  const P = modelPrefixes(names)[spec.model ? names.indexOf(spec.model) : 0]!;
  const model = await mod[`create${P}`]({ backend: 'cpu' });
  try {
    model.loadWeights(readFileSync(spec.weights));
    const inputs = Object.fromEntries(Object.entries(spec.inputs).map(([k, v]) => [k, { data: v.dtype === 'int32' ? Int32Array.from(v.data) : Float32Array.from(v.data), shape: v.shape, lengths: v.lengths }]));
    const out = Object.values(await model.forward(inputs))[0] as { shape: number[]; data: Float32Array };
    const genInput = Object.keys(spec.inputs)[0]!;
    const generate = [];
    for (const o of spec.generate) {
      const r = await model.generate({ [genInput]: inputs[genInput] }, o);
      generate.push({ ids: r.ids.map((x: ArrayLike<number>) => Array.from(x)), scores: Array.from(r.scores as number[]), nBest: r.nBest });
    }
    return { output: out, generate, manifest: mod[`${P}Manifest`].weights };
  } finally {
    model.dispose();
  }
}

describe.skipIf(!python)('nnc torch: the emitted PyTorch modules', () => {
  const specs = python ? collectSpecs() : [];
  const results = new Map<string, PyResult>();
  const nnc = new Map<string, Awaited<ReturnType<typeof nncRun>>>();
  const files: string[] = [];

  beforeAll(async () => {
    const dir = join(TORCH_OUT, 'modules');
    mkdirSync(dir, { recursive: true });
    const jobs: PyJob[] = specs.map((s, i) => {
      const module = join(dir, `m${i}_${basename(s.file, '.nn').replace(/\W/g, '_')}.py`);
      if (!files.includes(module)) writeFileSync(module, emitPython(s.text, s.file));
      files.push(module);
      const genInput = Object.keys(s.inputs)[0]!;
      return { id: s.id, module, ...(s.model ? { model: s.model } : {}), weights: s.weights, inputs: s.inputs, generate: s.generate.map((o) => ({ input: genInput, options: snake(o) })) };
    });
    // Python and nnc run side by side
    const py = runPythonJobs(python!, jobs, 'forward');
    for (const s of specs) nnc.set(s.id, await nncRun(s));
    for (const [k, v] of await py) results.set(k, v);
  }, 600_000);

  it('every module compiles and is clean under pyflakes', () => {
    execFileSync(python!, ['-m', 'py_compile', ...files]);
    let flakes = '';
    try {
      execFileSync(python!, ['-c', 'import pyflakes'], { stdio: 'ignore' });
    } catch {
      if (process.env.NNC_REQUIRE_PYTHON) throw new Error('NNC_REQUIRE_PYTHON is set but pyflakes is missing: install python3-pyflakes');
      return;
    }
    try {
      execFileSync(python!, ['-m', 'pyflakes', ...files], { encoding: 'utf8' });
    } catch (e) {
      flakes = String((e as { stdout?: string }).stdout ?? e);
    }
    expect(flakes).toBe('');
  });

  it('covers every example and fixture', () => {
    expect(specs.filter((s) => s.id.startsWith('examples/')).length).toBeGreaterThanOrEqual(11);
    expect(specs.length).toBeGreaterThanOrEqual(130);
    expect(specs.filter((s) => s.generate.some((g) => g.strategy === 'sample')).length).toBeGreaterThanOrEqual(50);
  });

  it('reports the largest forward difference seen', () => {
    let worst = 0;
    for (const s of specs) {
      const r = results.get(s.id);
      if (r && !r.error) worst = Math.max(worst, maxAbsDiff(r.output.data, nnc.get(s.id)!.output.data));
    }
    console.log(`nnc torch: ${specs.length} specs, max |PyTorch - nnc cpu| = ${worst.toExponential(2)}`);
    expect(worst).toBeLessThanOrEqual(1e-5);
  });

  describe.each(specs.map((s) => [s.id, s] as const))('%s', (_id, spec) => {
    const py = () => {
      const r = results.get(spec.id)!;
      if (r.error) throw new Error(`Python failed:\n${r.error}`);
      return r;
    };

    it('state_dict() has exactly the manifest\'s names and shapes', () => {
      const want = nnc.get(spec.id)!.manifest.map((w) => `${w.name} [${w.shape.join(', ')}]`).sort();
      const got = py().state_dict.map(([n, s]) => `${n} [${s.join(', ')}]`).sort();
      expect(got).toEqual(want);
    });

    it('forward() equals nnc (cpu) within 1e-5', () => {
      const { output } = nnc.get(spec.id)!;
      const r = py();
      expect(r.output.shape).toEqual(output.shape);
      expect(maxAbsDiff(r.output.data, output.data)).toBeLessThanOrEqual(1e-5);
      if (spec.reference) expect(maxAbsDiff(r.output.data, spec.reference.data), 'vs the fixture\'s PyTorch reference').toBeLessThanOrEqual(1e-5);
    });

    if (spec.generate.length) {
      it('generate() gives nnc\'s ids: greedy, beam (lengthNormalize, nBest), seeded sampling', () => {
        const want = nnc.get(spec.id)!.generate;
        const got = py().generate;
        spec.generate.forEach((o, k) => {
          const what = JSON.stringify(o);
          expect(got[k]!.ids, `ids for ${what}`).toEqual(want[k]!.ids);
          expect(maxAbsDiff(got[k]!.scores, want[k]!.scores), `scores for ${what}`).toBeLessThanOrEqual(1e-4);
          if (o.nBest) expect(got[k]!.n_best!.map((row) => row.map(([ids]) => ids)), `nBest for ${what}`).toEqual(want[k]!.nBest!.map((row) => row.map((h) => h.ids)));
        });
      });
    }
  });
});
