/**
 * Reverse mode on whole models (src/passes/grad): every fixture spec's backward graph (the
 * stock-checkpoint cases' too), as lowered and after merge-matmuls + hoist, under both keep
 * policies and with recomputation, against float64 central differences
 * along a random direction through all weights and float inputs; a few tiny specs element by
 * element; and the structure the issue asks for: the recurrent weights' gradients are one
 * contraction over all steps outside the backward loop, padded steps contribute nothing.
 */
import { describe, expect, it } from 'vitest';
import { lower } from '../src/driver.ts';
import { evaluate, type InterpEnv, type Tensor } from '../src/ir/interp.ts';
import type { ModelIR } from '../src/ir/model.ts';
import type { OpAttrs } from '../src/ir/ops.ts';
import { verifyModel } from '../src/ir/verify.ts';
import { gradModel, type KeepPolicy } from '../src/passes/grad/index.ts';
import { fuse } from '../src/passes/fuse.ts';
import { hoistInputProjections } from '../src/passes/hoist.ts';
import { mergeMatmuls } from '../src/passes/merge-matmuls.ts';
import { directional, elementwiseError, randomTensor, runGrad } from './grad-helpers.ts';
import { prng } from './helpers.ts';
import { allFixtures, checkpointFixtures, loadFixture } from './interp-helpers.ts';

function optimized(m: ModelIR, level: 0 | 1): ModelIR {
  if (level) {
    mergeMatmuls(m.graph);
    hoistInputProjections(m.graph);
  }
  return m;
}

const runs: [0 | 1, KeepPolicy, number | undefined][] = [[0, 'dots', undefined], [1, 'dots', undefined], [1, 'none', undefined], [1, 'dots', 2], [0, 'dots', 3]];

describe.each([...allFixtures(), ...checkpointFixtures()])('%s', (name) => {
  it.each(runs)('-O%d, keep %s, checkpoint every %s: equals central differences', (level, keep, checkpoint) => {
    const f = loadFixture(name);
    const gr = gradModel(optimized(f.model, level), { keep, checkpoint });
    const y = evaluate(gr.forward.graph, f.env).outputs[gr.forward.output.name];
    const cot = randomTensor(y.shape, 7);
    const { grads } = runGrad(gr, f.env, cot);
    for (const seed of [3, 4]) {
      const { fd, ad } = directional(gr, f.env, cot, grads, seed);
      expect(Math.abs(fd - ad), `fd ${fd}, ad ${ad}`).toBeLessThanOrEqual(1e-6 * Math.max(Math.abs(fd), 1e-3));
    }
  });
});

/** Tiny specs, every element of every weight and float input perturbed. */
const tiny: [string, string, Record<string, { vocab?: number; dim?: number; T: number; lengths: number[] }>][] = [
  ['bidirectional 2-layer LSTM, pool max', 'model M {\n input x: vectors(dim = 2)\n output y\n lstm hidden = 2, layers = 2, bidirectional\n pool max\n}\n', { x: { dim: 2, T: 3, lengths: [3, 2] } }],
  ['GRU reset = before, merge mean', 'model M {\n input x: tokens(vocab = 4)\n output y\n embedding dim = 2\n gru hidden = 2, bidirectional, merge = mean, reset = before\n linear 2\n log_softmax\n}\n', { x: { vocab: 4, T: 3, lengths: [3, 1] } }],
  ['relu RNN, layernorm, residual', 'model M {\n input x: vectors(dim = 3)\n output y\n residual {\n  rnn hidden = 3, act = relu\n }\n layernorm\n}\n', { x: { dim: 3, T: 3, lengths: [2, 3] } }],
  ['seq2seq, Bahdanau additive, init final', 'model M {\n input source: tokens(vocab = 5, max_len = 3)\n input target: tokens(vocab = 4)\n output y\n encoder {\n  embedding dim = 2\n  gru hidden = 2\n }\n decoder init = final {\n  embedding dim = 2\n  attention score = additive, dim = 2\n  gru hidden = 2\n  linear 4\n }\n}\n', { source: { vocab: 5, T: 3, lengths: [3, 2] }, target: { vocab: 4, T: 2, lengths: [2, 1] } }],
  ['causal self-attention with heads, learned positions', 'model M {\n input x: tokens(vocab = 5, max_len = 3)\n output y\n embedding dim = 4\n positional learned\n residual {\n  attention self, heads = 2, causal\n }\n layernorm\n linear 3\n}\n', { x: { vocab: 5, T: 3, lengths: [3, 2] } }],
];

describe('tiny whole models, element by element', () => {
  it.each(tiny)('%s', (_name, spec, given) => {
    const { models } = lower(spec, 'tiny.nn');
    const m = models![0];
    const r = prng(5);
    const inputs: Record<string, Tensor> = {};
    const lengths: Record<string, Int32Array> = {};
    let B = 0;
    const dims: Record<string, number> = {};
    for (const inp of m.inputs) {
      const g = given[inp.name];
      B = g.lengths.length;
      dims[inp.time] = g.T;
      const n = B * g.T * (g.dim ?? 1);
      inputs[inp.name] = g.vocab ? { shape: [B, g.T], data: Int32Array.from({ length: n }, () => Math.floor(r() * g.vocab!)) } : { shape: [B, g.T, g.dim!], data: Float64Array.from({ length: n }, () => 2 * r() - 1) };
      lengths[inp.name] = Int32Array.from(g.lengths);
    }
    const params = Object.fromEntries(m.weights.map((w) => [w.name, Float64Array.from({ length: w.shape.reduce((a, d) => a * d, 1) }, () => 2 * r() - 1)]));
    const env: InterpEnv = { dims: { B, T: dims.T, S: dims.S }, inputs, lengths, params };
    for (const [level, checkpoint] of [[0, undefined], [1, undefined], [1, 2], [1, 3]] as const) {
      const gr = gradModel(optimized(lower(spec, 'tiny.nn').models![0], level), { checkpoint });
      const cot = randomTensor(evaluate(gr.forward.graph, env).outputs.y.shape, 9);
      const { grads } = runGrad(gr, env, cot);
      const { worst, where } = elementwiseError(gr, env, cot, grads);
      expect(worst, `-O${level} checkpoint ${checkpoint} ${where}`).toBeLessThan(1e-6);
    }
  });
});

describe('the backward loop', () => {
  it('a recurrent weight gradient is one contraction over all steps, outside the loop (-O1)', () => {
    const f = loadFixture('char_lm');
    const gr = gradModel(optimized(f.model, 1));
    const g = gr.backward.graph;
    for (const scan of g.ordered().filter((n) => n.op === 'scan')) {
      // nothing in a backward body is weight-shaped: every value there has a batch axis (weights and their views aside)
      for (const n of (scan.attrs as OpAttrs['scan']).body.ordered()) {
        if (!['param', 'rows', 'cols', 'const'].includes(n.op)) expect(n.shape[0], `${n.op} ${n.label}`).toBe('B');
      }
    }
    for (const w of gr.forward.weights.filter((x) => x.name.includes('weight_hh'))) {
      const out = g.get(g.outputs.find((o) => o.name === w.name)!.node);
      // merged gates: the whole stacked W_hh comes from one einsum over [B, T, 4H] × [B, T, H]
      expect(out.op).toBe('einsum');
      const spec = (out.attrs as OpAttrs['einsum']).spec;
      expect(spec).toMatch(/^(\w)(\w)\w,\1\2\w->\w\w$/);
      for (const i of out.inputs) expect(g.get(i).shape.slice(0, 2)).toEqual(['B', 'T']);
    }
    // and the hoisted input projection's gradient is the outer matmul's transpose: one more einsum
    for (const w of gr.forward.weights.filter((x) => x.name.includes('weight_ih'))) expect(g.get(g.outputs.find((o) => o.name === w.name)!.node).op).toBe('einsum');
  });

  it('padded steps contribute nothing: junk in the padding changes no gradient, and padded inputs get 0', () => {
    const f = loadFixture('lstm_bidir_layers3_vectors');
    const gr = gradModel(optimized(f.model, 1));
    const x = f.env.inputs!.x;
    const [B, T, D] = x.shape;
    const len = f.env.lengths!.x;
    const cot = randomTensor([B, T, gr.forward.graph.get(gr.forward.graph.outputs[0].node).shape[2] as number], 2);
    const a = runGrad(gr, f.env, cot).grads;
    const junk = Float64Array.from(x.data, (v, i) => (Math.floor(i / D) % T >= len[Math.floor(i / (T * D))] ? v * -3 + 1 : v));
    const b = runGrad(gr, { ...f.env, inputs: { x: { shape: x.shape, data: junk } } }, cot).grads;
    for (const k of Object.keys(a)) expect([...b[k].data], k).toEqual([...a[k].data]);
    for (let i = 0; i < junk.length; i++) if (Math.floor(i / D) % T >= len[Math.floor(i / (T * D))]) expect(a['input:x'].data[i]).toBe(0);
  });

  it('with recomputation every k steps, a recurrence keeps only its checkpoints: ⌈T / k⌉ states', () => {
    const f = loadFixture('lstm_long_t40');
    const plain = gradModel(optimized(loadFixture('lstm_long_t40').model, 1));
    const gr = gradModel(optimized(f.model, 1), { checkpoint: 8 });
    const kinds = (g: typeof gr) => g.saved.map((s) => s.kind).sort();
    expect(kinds(plain)).toContain('history');
    expect(kinds(gr)).not.toContain('history');
    expect(kinds(gr)).not.toContain('stacked');
    const cps = gr.saved.filter((s) => s.kind === 'checkpoints');
    expect(cps.length).toBe(1);
    const values = evaluate(gr.forward.graph, f.env).outputs;
    const T = f.env.inputs!.text.shape[1];
    expect(values[cps[0].name].shape[1]).toBe(Math.ceil(T / 8));
    // every value kept for the recurrence's own sake is gone: what is left is O(T) only where a consumer needs it
    const size = (g: typeof gr) => g.saved.reduce((a, s) => a + evaluate(g.forward.graph, f.env).outputs[s.name].data.length, 0);
    expect(size(gr)).toBeLessThan(size(plain) / 3);
  });

  it('the training forward and the backward graph partition into kernels (passes/fuse.ts) and stay valid', () => {
    for (const name of allFixtures()) {
      for (const checkpoint of [undefined, 4]) {
        const gr = gradModel(optimized(loadFixture(name).model, 1), { checkpoint });
        for (const g of [gr.forward.graph, gr.backward.graph]) {
          fuse(g);
          verifyModel(g);
        }
      }
    }
  });

  it('a weight that does not reach the output gets zeros', () => {
    const { models } = lower('model M {\n input x: vectors(dim = 2)\n output y\n linear 2\n}\n', 'm.nn');
    const m = models![0];
    // an extra weight the graph does not read
    const gr = gradModel({ ...m, weights: [...m.weights, { ...m.weights[0], name: 'unused.weight' }] });
    const env: InterpEnv = { dims: { B: 1, T: 1 }, inputs: { x: { shape: [1, 1, 2], data: Float64Array.of(1, 2) } }, lengths: { x: Int32Array.of(1) }, params: { 'linear0.weight': [1, 2, 3, 4], 'linear0.bias': [0, 0], 'unused.weight': [1, 1, 1, 1] } };
    const { grads } = runGrad(gr, env, { shape: [1, 1, 2], data: Float64Array.of(1, 1) });
    expect([...grads['unused.weight'].data]).toEqual([0, 0, 0, 0]);
    expect([...grads['linear0.weight'].data]).toEqual([1, 2, 1, 2]);
  });
});
