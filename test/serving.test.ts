/**
 * docs/serving.md, what can run here: `nnc onnx` (as a process) on a seq2seq example and the tiny
 * language model, the Triton model repository examples/serving/triton.ts writes from the files, and
 * the ONNX Runtime client loop (examples/serving/generate.ts, as a process) on the repository's
 * graphs. Each config.pbtxt declares exactly the inputs and outputs ONNX Runtime reads from its
 * model.onnx (names, element types, ranks, fixed sizes); the client's greedy ids equal nnc's
 * generate() on the wasm backend. Triton itself is not installed here and is not run.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { lower } from '../src/driver.ts';
import { writeRepository } from '../examples/serving/triton.ts';
import { compileAndImport, OUT, plainResult, ROOT } from './helpers.ts';
import { randomWeights, safetensors } from './torch-helpers.ts';

const DIR = join(OUT, 'serving');

/** The tensors a config.pbtxt declares: name → [type, dims]. */
function declared(config: string, section: 'input' | 'output'): Map<string, [string, number[]]> {
  const body = config.slice(config.indexOf(`${section} [`), config.indexOf('\n]', config.indexOf(`${section} [`)));
  const out = new Map<string, [string, number[]]>();
  for (const m of body.matchAll(/name: "([^"]+)"\s+data_type: (\w+)\s+dims: \[([^\]]*)\](\s+reshape: \{ shape: \[ \] \})?/g)) {
    out.set(m[1]!, [m[2]!, m[4] ? [] : m[3]!.split(',').map((x) => Number(x.trim()))]);
  }
  return out;
}

const CASES = [
  { spec: 'examples/translator_luong.nn', weights: undefined, source: [[3, 4, 5, 6], [7, 8, 9]], opts: { bos: 1, eos: 2, maxLen: 6 }, models: ['_encoder', '_decoder_step', ''] },
  { spec: 'examples/tiny_lm.nn', weights: 'examples/weights/tiny_lm.safetensors', source: [[5, 6, 7, 8, 9], [10, 11]], opts: { maxLen: 8 }, models: ['_decoder_step', ''] },
];

describe('serving: a Triton model repository and an ONNX Runtime client loop', () => {
  describe.each(CASES.map((c) => [c.spec, c] as const))('%s', (spec, c) => {
    it('nnc onnx → repository: every config.pbtxt declares what ONNX Runtime reads; the client loop gives nnc\'s greedy ids', async () => {
      const dir = join(DIR, spec.replace(/\W/g, '_'));
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      const text = readFileSync(join(ROOT, spec), 'utf8');
      const ir = lower(text, spec).models![0]!;
      const weights = c.weights ? join(ROOT, c.weights) : join(dir, 'w.safetensors');
      if (!c.weights) writeFileSync(weights, safetensors(randomWeights(ir.weights, 9)));
      const r = spawnSync(process.execPath, [join(ROOT, 'bin/nnc.js'), 'onnx', join(ROOT, spec), '--weights', weights, '-o', join(dir, 'model.onnx')], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const repo = join(dir, 'repository');
      const names = writeRepository(join(dir, 'model.onnx'), repo);
      const base = names.find((n) => !n.includes('_encoder') && !n.includes('_decoder_step'))!;
      expect(names.sort()).toEqual(c.models.map((s) => base + s).sort());
      for (const name of names) {
        const config = readFileSync(join(repo, name, 'config.pbtxt'), 'utf8');
        expect(config).toMatch(new RegExp(`^name: "${name}"\\nbackend: "onnxruntime"\\nmax_batch_size: 0\\n`));
        const session = await ort.InferenceSession.create(join(repo, name, '1', 'model.onnx'));
        for (const [section, metas] of [['input', session.inputMetadata], ['output', session.outputMetadata]] as const) {
          const want = new Map(metas.map((m) => {
            if (!m.isTensor) throw new Error(`${m.name} is not a tensor`);
            return [m.name, [m.type === 'float32' ? 'TYPE_FP32' : m.type === 'int32' ? 'TYPE_INT32' : m.type, m.shape.map((d) => (typeof d === 'number' ? d : -1))]];
          }));
          expect(declared(config, section), `${name} ${section}s`).toEqual(want);
        }
        await session.release();
      }
      // the client loop, as a process, on the repository's graphs
      const arg = join(dir, 'client.onnx');
      const decoder = names.find((n) => n.endsWith('_decoder_step'))!;
      const encoder = names.find((n) => n.endsWith('_encoder'));
      writeFileSync(arg.replace(/\.onnx$/, '.decoder.onnx'), readFileSync(join(repo, decoder, '1', 'model.onnx')));
      if (encoder) writeFileSync(arg.replace(/\.onnx$/, '.encoder.onnx'), readFileSync(join(repo, encoder, '1', 'model.onnx')));
      const flags = Object.entries(c.opts).flatMap(([k, v]) => [`--${k === 'maxLen' ? 'max-len' : k}`, String(v)]);
      const g = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'examples/serving/generate.ts'), arg, ...c.source.map((row) => row.join(' ')), ...flags], { encoding: 'utf8' });
      expect(g.stderr).toBe('');
      expect(g.status).toBe(0);
      const got = g.stdout.trim().split('\n').map((l) => (l.trim() ? l.trim().split(' ').map(Number) : []));
      // nnc's generate() on wasm
      const mod = await compileAndImport(`serving-${spec.replace(/\W/g, '_')}`, text, spec);
      const model = await mod.createModel({ backend: 'wasm' });
      try {
        model.loadWeights(readFileSync(weights));
        const input = ir.inputs[0]!.name;
        const T = Math.max(...c.source.map((x) => x.length));
        const data = Int32Array.from(c.source.flatMap((row) => [...row, ...new Array(T - row.length).fill(0)]));
        const want = plainResult(await model.generate({ [input]: { data, shape: [c.source.length, T], lengths: c.source.map((x) => x.length) } }, { strategy: 'greedy', ...c.opts })).ids;
        expect(got).toEqual(want);
      } finally {
        model.dispose();
      }
    }, 120_000);
  });
});
