/**
 * `nnc onnx`: for every spec in examples/ and in the fixtures (test/fixtures/*, the seq2seq, LM and
 * Transformer indexes) the exported graphs
 *  - pass Python's `onnx.checker` (full check, with shape inference; Debian's python3-onnx),
 *  - run on onnxruntime-node and give the fixture's PyTorch reference (its case.json), or for an
 *    example nnc's own forward on the cpu backend, within 1e-4 (the largest difference is printed);
 *  - and, for a model that generates, the encoder and decoder-step graphs driven by the plain client
 *    loop of examples/serving/generate.ts (ONNX Runtime only) give the fixture's PyTorch greedy ids,
 *    or for an example nnc's generate() ids.
 * The CLI is run as a whole process on one spec (files written, summary line) and on its errors.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { lower } from '../src/driver.ts';
import { exportOnnx, type OnnxExport } from '../src/export/onnx.ts';
import { weightMap } from '../src/runtime/weights.ts';
import { greedy } from '../examples/serving/generate.ts';
import { compileAndImport, FIXTURES, indexNames, maxAbsDiff, ROOT, OUT } from './helpers.ts';
import { inputsFor, randomWeights, safetensors, type PyTensor } from './torch-helpers.ts';

const DIR = join(OUT, 'onnx');
const TOL = 1e-4;

/** A Python that imports onnx: $NNC_PYTHON, /usr/bin/python3, python3; a failure under NNC_REQUIRE_PYTHON (CI). */
function onnxPython(): string | undefined {
  for (const py of [process.env.NNC_PYTHON, '/usr/bin/python3', 'python3']) {
    if (!py) continue;
    try {
      execFileSync(py, ['-c', 'import onnx'], { stdio: 'ignore' });
      return py;
    } catch {
      /* next */
    }
  }
  if (process.env.NNC_REQUIRE_PYTHON) throw new Error('NNC_REQUIRE_PYTHON is set but no Python imports onnx: install python3-onnx');
  return undefined;
}

interface Spec {
  id: string;
  file: string;
  text: string;
  weights: Uint8Array;
  inputs: Record<string, PyTensor>;
  /** The fixture's PyTorch output; examples: nnc's forward on cpu (filled in beforeAll). */
  reference?: number[];
  fromPyTorch: boolean;
  /** Greedy generation: options and the expected ids (PyTorch's, or nnc's for examples). */
  greedy?: { opts: { maxLen: number; bos?: number; eos?: number }; ids?: number[][] };
}

function collectSpecs(): Spec[] {
  const specs: Spec[] = [];
  readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.nn')).sort().forEach((f, i) => {
    const file = `examples/${f}`;
    const text = readFileSync(join(ROOT, file), 'utf8');
    // an n-gram model (examples/ngram.nn) has no graph to export (nnc onnx names it and leaves it out)
    const ir = lower(text, file).models?.[0];
    if (!ir) return;
    const shipped = join(ROOT, 'examples/weights', `${basename(f, '.nn')}.safetensors`);
    const weights = existsSync(shipped) ? readFileSync(shipped) : safetensors(randomWeights(ir.weights, 2000 + i));
    const decode = ir.decode as { bos?: number; eos?: number } | undefined;
    specs.push({
      id: file, file, text, weights, inputs: inputsFor(ir, 3000 + i), fromPyTorch: false,
      ...(ir.generate.ok ? { greedy: { opts: { maxLen: 5, ...(decode?.bos !== undefined ? { bos: decode.bos } : {}), ...(decode?.eos !== undefined ? { eos: decode.eos } : {}) } } } : {}),
    });
  });
  for (const name of ['index.json', 'seq2seq-index.json', 'lm-index.json', 'transformer-index.json'].flatMap(indexNames)) {
    const c = JSON.parse(readFileSync(join(FIXTURES, name, 'case.json'), 'utf8')) as {
      inputs: Record<string, PyTensor>; outputs: Record<string, { data: number[] }>; generate?: { opts: Record<string, unknown>; ids: number[][] }[];
    };
    const g = c.generate?.find((x) => x.opts.strategy === 'greedy');
    specs.push({
      id: name, file: `test/fixtures/${name}/model.nn`, text: readFileSync(join(FIXTURES, name, 'model.nn'), 'utf8'), weights: readFileSync(join(FIXTURES, name, 'weights.safetensors')),
      inputs: c.inputs, reference: Object.values(c.outputs)[0]!.data, fromPyTorch: true,
      ...(g ? { greedy: { opts: g.opts as { maxLen: number; bos?: number; eos?: number }, ids: g.ids } } : {}),
    });
  }
  return specs;
}

/** Rows of a padded token input, each cut to its length. */
const rowsOf = (t: PyTensor) => t.lengths.map((len, b) => t.data.slice(b * t.shape[1]!, b * t.shape[1]! + len));

function exportSpec(s: Spec): OnnxExport {
  const ir = lower(s.text, s.file).models![0]!;
  return exportOnnx(ir, weightMap(s.weights, ir.weights), { source: basename(s.file) });
}

function feeds(s: Spec): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(s.inputs)) {
    out[name] = t.dtype === 'int32' ? new ort.Tensor('int32', Int32Array.from(t.data), t.shape) : new ort.Tensor('float32', Float32Array.from(t.data), t.shape);
    out[`${name}.lengths`] = new ort.Tensor('int32', Int32Array.from(t.lengths), [t.lengths.length]);
  }
  return out;
}

/** nnc's forward (and greedy ids) on the cpu backend, for the examples (no PyTorch reference). */
async function nncRun(s: Spec): Promise<void> {
  const mod = await compileAndImport(`onnx-${s.id.replace(/\W/g, '_')}`, s.text, s.file);
  const model = await mod.createModel({ backend: 'cpu' });
  try {
    model.loadWeights(s.weights);
    const inputs = Object.fromEntries(Object.entries(s.inputs).map(([k, v]) => [k, { data: v.dtype === 'int32' ? Int32Array.from(v.data) : Float32Array.from(v.data), shape: v.shape, lengths: v.lengths }]));
    s.reference = Array.from((Object.values(await model.forward(inputs))[0] as { data: Float32Array }).data);
    if (s.greedy) {
      const first = Object.keys(inputs)[0]!;
      const r = await model.generate({ [first]: inputs[first] }, { strategy: 'greedy', ...s.greedy.opts });
      s.greedy.ids = r.ids.map((x: ArrayLike<number>) => Array.from(x));
    }
  } finally {
    model.dispose();
  }
}

const python = onnxPython();

describe('nnc onnx: every example and fixture on onnxruntime-node', () => {
  const specs = collectSpecs();
  const exported = new Map<string, OnnxExport>();
  const files = new Map<string, string[]>();
  const worst = { forward: 0, where: '' };

  beforeAll(async () => {
    mkdirSync(DIR, { recursive: true });
    for (const s of specs) {
      const e = exportSpec(s);
      exported.set(s.id, e);
      const stem = join(DIR, s.id.replace(/\W/g, '_'));
      const list: string[] = [];
      for (const [part, bytes] of [['', e.forward], ['.encoder', e.encoder], ['.decoder', e.decoder]] as const) {
        if (!bytes) continue;
        writeFileSync(`${stem}${part}.onnx`, bytes);
        list.push(`${stem}${part}.onnx`);
      }
      files.set(s.id, list);
      if (!s.fromPyTorch) await nncRun(s);
    }
  }, 600_000);

  it('covers every example and fixture, with decoder-step graphs for the models that generate', () => {
    expect(specs.filter((s) => !s.fromPyTorch).length).toBeGreaterThanOrEqual(11);
    expect(specs.length).toBeGreaterThanOrEqual(130);
    expect(specs.filter((s) => s.greedy?.ids).length).toBeGreaterThanOrEqual(20);
  });

  it.skipIf(!python)('onnx.checker accepts every file (full check with shape inference)', () => {
    const all = [...files.values()].flat();
    const script = 'import onnx, sys\nbad = []\nfor p in sys.argv[1:]:\n    try:\n        onnx.checker.check_model(onnx.load(p), full_check=True)\n    except Exception as e:\n        bad.append(p + ": " + str(e).splitlines()[0])\nprint("\\n".join(bad))';
    const out = execFileSync(python!, ['-c', script, ...all], { encoding: 'utf8', maxBuffer: 1 << 26 });
    expect(out.trim()).toBe('');
    expect(all.length).toBeGreaterThanOrEqual(160);
  }, 300_000);

  it('every file declares opset 17 and its interface in metadata', async () => {
    for (const s of specs) expect(exported.get(s.id)!.io.opset, s.id).toBe(17);
  });

  describe.each(specs.map((s) => [s.id, s] as const))('%s', (_id, s) => {
    it(`forward on onnxruntime equals ${s.fromPyTorch ? 'PyTorch' : 'nnc (cpu)'} within ${TOL}`, async () => {
      const session = await ort.InferenceSession.create(exported.get(s.id)!.forward);
      const out = Object.values(await session.run(feeds(s)))[0]!;
      const d = maxAbsDiff(out.data as Float32Array, s.reference!);
      if (d > worst.forward) Object.assign(worst, { forward: d, where: s.id });
      expect(d).toBeLessThanOrEqual(TOL);
    });

    if (s.greedy) {
      it('the encoder and decoder-step graphs, driven by a plain loop, give the greedy ids', async () => {
        const e = exported.get(s.id)!;
        const graphs = { ...(e.encoder ? { encoder: await ort.InferenceSession.create(e.encoder) } : {}), decoder: await ort.InferenceSession.create(e.decoder!) };
        const got = await greedy(ort, graphs, rowsOf(Object.values(s.inputs)[0]!), s.greedy!.opts);
        expect(got).toEqual(s.greedy!.ids);
      });
    }
  });

  it('reports the largest forward difference', () => {
    console.log(`nnc onnx: ${specs.length} specs, max |onnxruntime - reference| = ${worst.forward.toExponential(2)} (${worst.where})`);
    expect(worst.forward).toBeLessThanOrEqual(TOL);
  });
});

describe('nnc onnx: the CLI', () => {
  const nnc = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/nnc.js'), ...args], { encoding: 'utf8', cwd: DIR });
  beforeAll(() => mkdirSync(DIR, { recursive: true }));

  it('writes the forward, encoder and decoder-step files of a seq2seq example', () => {
    const ir = lower(readFileSync(join(ROOT, 'examples/translator_luong.nn'), 'utf8'), 'translator_luong.nn').models![0]!;
    writeFileSync(join(DIR, 'luong.safetensors'), safetensors(randomWeights(ir.weights, 5)));
    const r = nnc('onnx', join(ROOT, 'examples/translator_luong.nn'), '--weights', 'luong.safetensors', '-o', 'cli/luong.onnx');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^wrote cli\/luong\.onnx, cli\/luong\.encoder\.onnx and cli\/luong\.decoder\.onnx \(\w+: \d+ weights, opset 17\)\n$/);
    for (const f of ['luong', 'luong.encoder', 'luong.decoder']) expect(readFileSync(join(DIR, 'cli', `${f}.onnx`)).length).toBeGreaterThan(1000);
  });

  it('refuses what it cannot do, naming the thing and the fix', () => {
    const spec = join(ROOT, 'examples/translator_luong.nn');
    const cases: [string[], number, RegExp][] = [
      [['onnx', spec], 2, /nnc onnx needs --weights/],
      [['onnx', spec, '--weights', 'nothing.safetensors'], 2, /cannot read 'nothing\.safetensors': no such file/],
      [['onnx', spec, '--weights', 'luong.safetensors', '-o', 'x.pt'], 2, /-o must end in \.onnx/],
      [['onnx', spec, '--weights', 'luong.safetensors', '--model', 'Nope'], 2, /has no model 'Nope'/],
      [['onnx', join(ROOT, 'examples/tagger.nn'), '--weights', 'luong.safetensors'], 1, /does not hold \w+'s weights/],
      [['compile', spec, '--weights', 'luong.safetensors'], 2, /--weights and --model belong to 'onnx'/],
    ];
    for (const [args, code, msg] of cases) {
      const r = nnc(...args);
      expect(r.status, args.join(' ')).toBe(code);
      expect(r.stderr, args.join(' ')).toMatch(msg);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });
});
