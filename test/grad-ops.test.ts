/**
 * Every vector–Jacobian rule (src/passes/grad/rules.ts) against float64 central differences on the
 * IR interpreter, op by op on tiny graphs (B = 2, T = 3, a padded row): each case builds a small
 * graph around one op (in every variant: each unary and binary function, broadcasting, each pool
 * mode, masked and causal softmax, einsums whose letters are summed or broadcast), and every element
 * of every weight and float input is perturbed by ±1e-6. The table's coverage is checked too: every
 * op that has a rule is exercised here.
 */
import { describe, expect, it } from 'vitest';
import { DiagnosticBag } from '../src/diagnostics/diagnostic.ts';
import type { Span } from '../src/diagnostics/span.ts';
import { Builder, type WeightEntry } from '../src/ir/build.ts';
import { Graph } from '../src/ir/graph.ts';
import { evaluate, type InterpEnv } from '../src/ir/interp.ts';
import type { ModelIR } from '../src/ir/model.ts';
import type { BinaryFn, OpName, UnaryFn } from '../src/ir/ops.ts';
import { gradModel } from '../src/passes/grad/index.ts';
import { VJP } from '../src/passes/grad/rules.ts';
import { elementwiseError, randomTensor, runGrad } from './grad-helpers.ts';
import { prng } from './helpers.ts';

const span: Span = { file: 'ops', start: 0, end: 0, line: 0, col: 0 };
const B = 2;
const T = 3;
const D = 4;
const LENGTHS = Int32Array.of(3, 2);

interface Ctx {
  b: Builder;
  /** vectors input x [B, T, 4] (max_len 3) */
  x: number;
  /** token ids [B, T] (vocab 5) */
  ids: number;
  lengths: number;
  p(name: string, shape: number[]): number;
  /** x · Wᵀ: [B, T, n], a fresh weight each call */
  lin(n: number): number;
  c(v: number): number;
}

interface OpCase {
  readonly name: string;
  build(c: Ctx): number;
}

function model(build: (c: Ctx) => number): { m: ModelIR; env: InterpEnv } {
  const g = new Graph();
  const weights: WeightEntry[] = [];
  const b = new Builder(g, new DiagnosticBag(), weights);
  const x = b.input('x', 'vectors', D, span, undefined, T);
  const ids = b.input('ids', 'tokens', undefined, span, 5);
  const lengths = b.lengths('x', span);
  let k = 0;
  const p = (name: string, shape: number[]) => b.param(name, shape, 'linear', span);
  const c: Ctx = { b, x, ids, lengths, p, lin: (n) => b.matmul(x, p(`w${k++}`, [n, D]), undefined, span, 'x·Wᵀ'), c: (v) => b.constant(v, span) };
  const y = build(c);
  g.outputs = [{ name: 'y', node: y }];
  g.prune();
  if (b.diags.hasErrors) throw new Error(b.diags.items.map((d) => d.message).join('; '));
  const m: ModelIR = {
    name: 'op', graph: g, weights, span, output: { name: 'y', seq: true }, generate: { ok: true },
    inputs: [{ name: 'x', form: 'vectors', dim: D, time: 'T', maxLen: T }, { name: 'ids', form: 'tokens', vocab: 5, time: 'T' }],
  };
  const r = prng(11);
  const params = Object.fromEntries(weights.map((w) => [w.name, Float64Array.from({ length: w.shape.reduce((a, d) => a * d, 1) }, () => 2 * r() - 1)]));
  const env: InterpEnv = {
    dims: { B, T },
    inputs: { x: randomTensor([B, T, D], 5), ids: { shape: [B, T], data: Int32Array.of(0, 3, 3, 1, 4, 0) } },
    lengths: { x: LENGTHS, ids: LENGTHS },
    params,
    // the dropout case's mask (layer 0, [B, T, 3]): 0 where dropped, 1 / (1 − ½) where kept
    dropout: { 0: { shape: [B, T, 3], data: Float64Array.from({ length: B * T * 3 }, (_, i) => (i % 3 === 1 ? 0 : 2)) } },
  };
  return { m, env };
}

const UNARY: UnaryFn[] = ['tanh', 'sigmoid', 'relu', 'gelu', 'one_minus', 'half', 'exp'];
const BINARY: BinaryFn[] = ['add', 'sub', 'mul', 'div', 'max'];

const cases: OpCase[] = [
  { name: 'matmul with bias', build: (c) => c.b.matmul(c.x, c.p('w', [3, D]), c.p('b', [3]), span, 'mm') },
  { name: 'matmul on rows of a weight', build: (c) => c.b.matmul(c.x, c.b.rows(c.p('w', [6, D]), 2, 3, span), c.b.rows(c.p('b', [6]), 1, 3, span), span, 'mm') },
  { name: 'matmul on cols of a weight', build: (c) => c.b.matmul(c.x, c.b.cols(c.p('w', [3, 7]), 2, D, span), undefined, span, 'mm') },
  { name: 'gather (embedding)', build: (c) => c.b.binary('mul', c.b.gather(c.p('table', [5, D]), c.ids, span, 'emb'), c.x, span, 'e*x') },
  ...UNARY.map((fn) => ({ name: `unary ${fn}`, build: (c: Ctx) => c.b.unary(fn, c.lin(3), span, fn) })),
  { name: 'unary sqrt', build: (c) => c.b.unary('sqrt', c.b.binary('add', c.b.binary('mul', c.lin(3), c.lin(3), span, 'sq'), c.c(0.5), span, '+'), span, 'sqrt') },
  { name: 'unary step (no gradient)', build: (c) => c.b.binary('add', c.b.unary('step', c.lin(3), span, 'step'), c.lin(3), span, '+') },
  ...BINARY.flatMap((fn) => {
    // denominators kept away from 0
    const rhs = (c: Ctx, v: number) => (fn === 'div' ? c.b.binary('add', c.b.unary('sigmoid', v, span, 's'), c.c(0.5), span, '+') : v);
    return [
      { name: `binary ${fn} [B,T,3] [B,T,3]`, build: (c: Ctx) => c.b.binary(fn, c.lin(3), rhs(c, c.lin(3)), span, fn) },
      { name: `binary ${fn} [B,T,3] [3]`, build: (c: Ctx) => c.b.binary(fn, c.lin(3), rhs(c, c.p('v', [3])), span, fn) },
      { name: `binary ${fn} [3] [B,T,3]`, build: (c: Ctx) => c.b.binary(fn, c.p('v', [3]), rhs(c, c.lin(3)), span, fn) },
      { name: `binary ${fn} [B,T,3] [B,T,1]`, build: (c: Ctx) => c.b.binary(fn, c.lin(3), rhs(c, c.lin(1)), span, fn) },
      { name: `binary ${fn} [B,1,3] [B,T,1]`, build: (c: Ctx) => c.b.binary(fn, c.b.unsqueeze(c.b.matmul(c.b.pool(c.x, c.lengths, 'mean', undefined, span, 'pm'), c.p('u', [3, D]), undefined, span, 'u'), 1, span, 'u1'), rhs(c, c.lin(1)), span, fn) },
      { name: `binary ${fn} [B,T,3] scalar`, build: (c: Ctx) => c.b.binary(fn, c.lin(3), fn === 'div' ? c.c(1.7) : c.c(0.3), span, fn) },
    ];
  }),
  { name: 'einsum btd,btd->bt (one operand twice)', build: (c) => {
    const a = c.lin(3);
    return c.b.einsum('btd,btd->bt', [a, a], 1, span, 'sq');
  } },
  { name: 'einsum btd,bsd->bts scaled', build: (c) => c.b.einsum('btd,bsd->bts', [c.lin(3), c.lin(3)], 0.5, span, 'qk') },
  { name: 'einsum btd->bdt (transpose)', build: (c) => c.b.einsum('btd->bdt', [c.lin(3)], 1, span, 'tr') },
  { name: 'einsum btd,od->bt (o only in the weight)', build: (c) => c.b.einsum('btd,od->bt', [c.b.unary('tanh', c.lin(3), span, 't'), c.p('v', [1, 3])], 1, span, 'vdot') },
  { name: 'einsum btnh->bth (n summed, broadcast back)', build: (c) => c.b.einsum('btnh->bth', [c.b.splitHeads(c.lin(6), 2, span, 'h')], 0.5, span, 'mean heads') },
  { name: 'einsum bts,bsd->btd (weighted sum)', build: (c) => c.b.einsum('bts,bsd->btd', [c.b.einsum('btd,bsd->bts', [c.lin(2), c.lin(2)], 1, span, 'e'), c.lin(3)], 1, span, 'ctx') },
  { name: 'slice', build: (c) => c.b.slice(c.lin(6), 1, 3, span, 'sl') },
  { name: 'slice of a symbolic count', build: (c) => c.b.slice(c.lin(5), 0, 'T', span, 'first T') },
  { name: 'unsqueeze', build: (c) => c.b.unsqueeze(c.lin(3), 1, span, 'u') },
  { name: 'split_heads and merge_heads', build: (c) => c.b.mergeHeads(c.b.unary('tanh', c.b.splitHeads(c.lin(6), 3, span, 'split'), span, 't'), span, 'merge') },
  { name: 'concat', build: (c) => c.b.unary('tanh', c.b.concat(c.lin(2), c.x, span, 'cat'), span, 't') },
  { name: 'flatten', build: (c) => c.b.matmul(c.b.flatten(c.x, T, span, 'flat'), c.p('w', [3, T * D]), undefined, span, 'mm') },
  { name: 'softmax', build: (c) => c.b.softmax(c.lin(5), false, span, 'sm') },
  { name: 'log_softmax', build: (c) => c.b.softmax(c.lin(5), true, span, 'lsm') },
  { name: 'softmax masked by lengths', build: (c) => c.b.softmax(c.b.einsum('btd,bsd->bts', [c.lin(3), c.lin(3)], 1, span, 'e'), false, span, 'sm', c.lengths) },
  { name: 'softmax causal', build: (c) => c.b.softmax(c.b.einsum('btd,bsd->bts', [c.lin(3), c.lin(3)], 1, span, 'e'), false, span, 'sm', c.lengths, true) },
  { name: 'layernorm', build: (c) => c.b.layernorm(c.lin(5), c.p('gamma', [5]), c.p('beta', [5]), 1e-5, span, 'ln') },
  ...(['last', 'first', 'mean', 'max'] as const).map((mode) => ({ name: `pool ${mode}`, build: (c: Ctx) => c.b.pool(c.b.unary('tanh', c.lin(3), span, 't'), c.lengths, mode, undefined, span, 'pool') })),
  { name: 'pool last with split (bidirectional)', build: (c) => c.b.pool(c.lin(4), c.lengths, 'last', 2, span, 'pool') },
  { name: 'dropout (a given mask)', build: (c) => c.b.dropout(c.lin(3), 0.5, span, 'drop') },
  { name: 'mask', build: (c) => c.b.mask(c.lin(3), c.lengths, span, 'mask') },
  { name: 'mask causal', build: (c) => c.b.mask(c.b.einsum('btd,bsd->bts', [c.lin(3), c.lin(3)], 1, span, 'e'), c.lengths, span, 'mask', 2, true) },
  { name: 'positions and sinusoid (no gradient) beside x', build: (c) => c.b.binary('add', c.x, c.b.sinusoid(c.b.positions(c.x, 'x', span, 'pos'), D, span, 'pe'), span, '+') },
  { name: 'learned positions: gather of positions', build: (c) => c.b.binary('add', c.x, c.b.gather(c.p('pe', [T, D]), c.b.positions(c.x, 'x', span, 'pos'), span, 'pe'), span, '+') },
  { name: 'scatter_add', build: (c) => c.b.scatterAdd(c.ids, c.lin(3), 5, span, 'scatter') },
  { name: 'pad last axis', build: (c) => c.b.pad(c.lin(3), 2, 1, 6, span, 'pad') },
  { name: 'pad axis 0', build: (c) => c.b.binary('mul', c.b.pad(c.p('w', [3, D]), 0, 2, 6, span, 'pad'), c.p('u', [6, D]), span, '*') },
  { name: 'broadcast', build: (c) => c.b.binary('mul', c.b.broadcast(c.p('v', [3]), ['B', 'T', 3], span, 'bc'), c.lin(3), span, '*') },
];

describe('each vector–Jacobian rule equals central differences', () => {
  it.each(cases.map((k) => [k.name, k] as const))('%s', (_name, k) => {
    const { m, env } = model(k.build);
    const gr = gradModel(m);
    const cot = randomTensor(evaluate(gr.forward.graph, env).outputs.y.shape, 17);
    const { grads } = runGrad(gr, env, cot);
    const { worst, where } = elementwiseError(gr, env, cot, grads);
    expect(worst, where).toBeLessThan(1e-6);
  });
});

describe('coverage of the rule table', () => {
  const graphs = cases.map((k) => model(k.build).m.graph);
  const ops = new Set(graphs.flatMap((g) => g.ordered().map((n) => n.op)));
  it('every op with a rule is exercised by a case here', () => {
    const ruled = (Object.keys(VJP) as OpName[]).filter((op) => VJP[op].kind === 'rule');
    expect(ruled.filter((op) => !ops.has(op))).toEqual([]);
  });
  it('every unary and binary function and pool mode is exercised', () => {
    const attrs = graphs.flatMap((g) => g.ordered().map((n) => `${n.op}:${(n.attrs as { fn?: string; mode?: string }).fn ?? (n.attrs as { mode?: string }).mode ?? ''}`));
    const want = [...UNARY, 'sqrt', 'step'].map((f) => `unary:${f}`).concat(BINARY.map((f) => `binary:${f}`), ['last', 'first', 'mean', 'max'].map((m) => `pool:${m}`));
    expect(want.filter((w) => !attrs.includes(w))).toEqual([]);
  });
  it('every op says what its gradient is', () => {
    for (const [op, v] of Object.entries(VJP)) expect(v.kind === 'rule' || v.kind === 'scan' || ('why' in v && v.why.length > 0), op).toBe(true);
  });
});
