/**
 * The typed plan and the kernel table (src/codegen/plan.ts, src/runtime/plan.ts, model.ts):
 * - on every spec the repository has, every buffer the plan makes is released exactly once, after
 *   its last reader, and never read after that (forward keeps only its output);
 * - at run time, forward holds only live buffers, and generate() releases everything it made —
 *   nothing twice, nothing left over (the executor is instrumented);
 * - kernels with the same body are one table entry: the 96-block Transformer of the language
 *   brief's example 7 compiles to at most 25 kernels and a module under 300 KB.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile, lower, optimize, optimizeWithTraining } from '../src/driver.ts';
import { compileProgram } from '../src/codegen/plan.ts';
import type { Instr, Plan, Slot } from '../src/runtime/plan.ts';
import { compileAndImport, prng, ROOT } from './helpers.ts';

const specs: [string, string][] = [];
for (const dir of ['examples', 'test/golden/ir']) {
  for (const f of readdirSync(join(ROOT, dir)).filter((f) => f.endsWith('.nn'))) specs.push([`${dir}/${f}`, readFileSync(join(ROOT, dir, f), 'utf8')]);
}
for (const d of readdirSync(join(ROOT, 'test/fixtures'), { withFileTypes: true })) {
  // a case directory holds its spec as model.nn (ngram/ and text/ hold corpora and vocabularies)
  if (d.isDirectory() && existsSync(join(ROOT, 'test/fixtures', d.name, 'model.nn'))) specs.push([`test/fixtures/${d.name}/model.nn`, readFileSync(join(ROOT, 'test/fixtures', d.name, 'model.nn'), 'utf8')]);
}

/** What an instruction reads from outside itself, and what it makes that outlives it. */
function reads(i: Instr): Slot[] {
  if (i.op === 'run') return [...i.args];
  const own = new Set([i.out, ...i.body.map((b) => b.out)]);
  return [...(i.init !== undefined ? [i.init] : []), i.lengths, ...i.step.args, ...i.body.flatMap((b) => b.args)].filter((s) => !own.has(s));
}
const makes = (i: Instr): Slot[] => (i.op === 'run' ? [i.out] : [i.out, ...(i.exports ?? [])]);

function checkLiveness(plan: Plan): void {
  const made = new Set<Slot>();
  for (const inp of plan.inputs) for (const s of [inp.data, inp.lengths, inp.offsets, inp.keyLengths]) if (s !== undefined) made.add(s);
  for (const c of plan.caches) made.add(c.cache);
  const freed = new Set<Slot>();
  for (const i of [...plan.encode, ...plan.decode]) {
    for (const r of reads(i)) {
      expect(r < plan.weights || made.has(r) || (plan.tables ?? []).some((t) => t.slot === r), `slot ${r} is read before it is made`).toBe(true);
      expect(freed.has(r), `slot ${r} is read after its release`).toBe(false);
    }
    for (const m of makes(i)) made.add(m);
    for (const f of i.free ?? []) {
      expect(made.has(f), `slot ${f} is released but never made`).toBe(true);
      expect(f >= plan.weights, `weight slot ${f} is released by a run`).toBe(true);
      expect(freed.has(f), `slot ${f} is released twice`).toBe(false);
      freed.add(f);
    }
  }
  // everything made is released, except the output
  for (const m of made) if (m !== plan.output.slot) expect(freed.has(m), `slot ${m} is never released`).toBe(true);
  expect(freed.has(plan.output.slot)).toBe(false);
}

describe('every buffer the plan makes is released once, after its last reader', () => {
  it.each(specs)('%s', (file, text) => {
    const { models } = lower(text, file);
    for (const m of models!) checkLiveness(compileProgram(optimize(m)).plan);
  });
});

/** Counts the buffers an executor hands out and takes back; a release of something not live is an error. */
function instrument(ex: Record<string, any>) {
  const live = new Set<unknown>();
  let peak = 0;
  const errors: string[] = [];
  const track = (b: unknown) => {
    live.add(b);
    peak = Math.max(peak, live.size);
    return b;
  };
  for (const k of ['upload', 'zeros', 'runNow']) {
    const f = ex[k].bind(ex);
    ex[k] = (...a: unknown[]) => track(f(...a));
  }
  for (const k of ['run', 'gatherRows', 'placeRows']) {
    const f = ex[k].bind(ex);
    ex[k] = async (...a: unknown[]) => track(await f(...a));
  }
  const release = ex['release'].bind(ex);
  ex['release'] = (b: unknown) => {
    if (!live.delete(b)) errors.push('a buffer released twice, or one it did not make');
    release(b);
  };
  return { live, errors, get peak() { return peak; }, reset() { peak = live.size; } };
}

describe('at run time', () => {
  it('forward holds only live buffers: a chain of 12 layers peaks at a few, whatever its depth', async () => {
    const text = `model Deep {\n  input x: vectors(dim = 6)\n  output y\n  repeat 12 { linear 6; tanh }\n}\n`;
    const mod = await compileAndImport('plan_deep', text);
    for (const backend of ['cpu', 'wasm']) {
      const m = await mod.createModel({ backend, threads: 1 });
      try {
        const r = prng(2);
        m.loadWeights(Object.fromEntries(m.manifest.weights.map((w: { name: string; shape: number[] }) => [w.name, Float32Array.from({ length: w.shape.reduce((a, d) => a * d, 1) }, () => r() - 0.5)])));
        const meter = instrument(m.internals().ex);
        meter.reset();
        const out = await m.forward({ x: { data: new Float32Array(2 * 3 * 6).fill(0.5), shape: [2, 3, 6] } });
        expect(out.y.shape).toEqual([2, 3, 6]);
        // inputs (data, lengths), one layer's input and output, the mask: never the 12 layers' outputs
        expect(meter.peak).toBeLessThanOrEqual(5);
        expect(meter.live.size).toBe(0);
        expect(meter.errors).toEqual([]);
      } finally {
        m.dispose();
      }
    }
  });

  it.each([
    ['a language model with causal self-attention (caches, positions)', 'examples/tiny_lm.nn', { text: [[5, 6, 7], [8, 9, 9]] }],
    ['a seq2seq model with Bahdanau attention (captures, an initial state, attention weights)', 'examples/translator_bahdanau.nn', { source: [[3, 4, 5], [6, 7, 7]] }],
    ['an encoder-decoder Transformer (captures and caches)', 'examples/transformer_translator.nn', { source: [[3, 4, 5], [6, 7, 7]] }],
  ])('generate() on %s releases everything it made, nothing twice', async (_what, file, inputs) => {
    const text = readFileSync(join(ROOT, file), 'utf8');
    const mod = await compileAndImport(`plan_gen_${file.replace(/\W/g, '_')}`, text, file);
    const m = await mod.createModel({ backend: 'cpu' });
    try {
      const r = prng(4);
      m.loadWeights(Object.fromEntries(m.manifest.weights.map((w: { name: string; shape: number[] }) => [w.name, Float32Array.from({ length: w.shape.reduce((a, d) => a * d, 1) }, () => (r() - 0.5) * 0.2)])));
      const meter = instrument(m.internals().ex);
      for (const opts of [{ strategy: 'greedy', maxLen: 4 }, { strategy: 'beam', beam: 3, maxLen: 4 }, { strategy: 'sample', maxLen: 3, seed: 1 }]) {
        const res = await m.generate(inputs, { ...opts, ...(file.includes('bahdanau') ? { attention: true } : {}) });
        expect(res.ids).toHaveLength(2);
        expect(meter.live.size, `buffers left after generate (${opts.strategy})`).toBe(0);
      }
      expect(meter.errors).toEqual([]);
    } finally {
      m.dispose();
    }
  });
});

describe('kernels with the same body are emitted once', () => {
  it('the 96-block Transformer classifier (example 7, repeat 96) compiles to at most 25 kernels and under 300 KB', () => {
    const text = readFileSync(join(ROOT, 'examples/transformer_classifier.nn'), 'utf8').replace('repeat 4', 'repeat 96');
    expect(text).toContain('repeat 96');
    // the module for forward and generate (--no-train: the training program, plans of 96 blocks'
    // forward and backward as data, adds more on top)
    const r = compile(text, 'transformer_classifier.nn', 'ts', 2, { train: false });
    expect(r.diagnostics).toEqual([]);
    expect(r.kernels![0]).toBeLessThanOrEqual(25);
    expect(Buffer.byteLength(r.output!)).toBeLessThan(300_000);
    // and as many as with 4 blocks: the blocks after the first are the same kernels on other weights
    const four = compile(readFileSync(join(ROOT, 'examples/transformer_classifier.nn'), 'utf8'), 'transformer_classifier.nn');
    expect(r.kernels![0]).toBe(four.kernels![0]);
  });
});

describe('forward and training plans share one kernel table', () => {
  const text = readFileSync(join(ROOT, 'examples/char_lm.nn'), 'utf8');
  it('renders each distinct kernel once: the training plans call the forward\'s kernels where they compute the same thing', () => {
    const r = compile(text, 'char_lm.nn');
    expect(r.diagnostics).toEqual([]);
    const out = r.output!;
    // one kernel table, and the training constant holds plans only
    expect(out.match(/_KERNELS: readonly __nnc\.KernelDef\[\]/g)).toHaveLength(1);
    const train = out.slice(out.indexOf('const CharLM_TRAIN'));
    expect(train).not.toContain('cpu: (');
    const names = [...out.matchAll(/^ {6}name: "(CharLM\.k\d+)",$/gm)].map((m) => m[1]);
    expect(new Set(names).size).toBe(names.length);
    // the table's kernels are distinct by structure, and the training forward reuses forward ones (the input projections)
    const { models } = lower(text, 'char_lm.nn');
    const m = models![0]!;
    const { ir, train: graphs } = optimizeWithTraining(m);
    const p = compileProgram(ir, graphs);
    expect(names.length).toBe(p.kernels.length);
    expect(r.kernels![0]).toBe(p.forwardKernels);
    const used = (plan: Plan) => new Set(plan.decode.flatMap((i) => (i.op === 'run' ? [i.kernel] : [i.step.kernel, ...i.body.map((b) => b.kernel)])));
    const fwd = used(p.plan);
    expect([...fwd].every((k) => k < p.forwardKernels)).toBe(true);
    const shared = [...used(p.train!.forward)].filter((k) => fwd.has(k));
    expect(shared.length).toBeGreaterThan(0);
    for (const k of used(p.train!.backward)) expect(k).toBeLessThan(p.kernels.length);
  });
});
