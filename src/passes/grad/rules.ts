/**
 * The vector–Jacobian rule of every core op, in one table typed over the op set: an op added to
 * OP_TABLE without a row here is a type error. A rule receives its node's cotangent g and gives each
 * input its share, written in core ops (the transposes of gather, slice and pool are ops of their
 * own: scatter_add, pad, unpool). Reductions over broadcast or contracted axes are `Contraction`s,
 * so that inside a scan body a weight's per-step share can be summed over all steps outside the
 * loop (sweep.ts, scan.ts).
 *
 * Kinds: `rule` (a VJP), `leaf` (a value the gradient is collected at: weights, float inputs, a scan
 * body's state, step and captures), `none` (no gradient flows: integer values, constants, sources
 * the runtime makes), `scan` (transposed by scan.ts), `unsupported` (only in backward graphs:
 * second-order gradients are not made).
 */
import type { Builder } from '../../ir/build.ts';
import type { Dim, Shape } from '../../ir/graph.ts';
import type { OpName } from '../../ir/ops.ts';
import type { Operand, VjpCtx } from './sweep.ts';

export type Vjp<K extends OpName> =
  | { readonly kind: 'rule'; readonly vjp: (c: VjpCtx<K>) => void }
  | { readonly kind: 'leaf'; readonly why: string }
  | { readonly kind: 'none'; readonly why: string }
  | { readonly kind: 'unsupported'; readonly why: string }
  | { readonly kind: 'scan' };

const none = (why: string) => ({ kind: 'none' as const, why });
const leaf = (why: string) => ({ kind: 'leaf' as const, why });
const unsupported = (why: string) => ({ kind: 'unsupported' as const, why });
const BACKWARD_ONLY = unsupported('it appears only in backward graphs (second-order gradients are not made)');
const RESIDUAL = unsupported('the training forward makes it only for the backward graph to read (no cotangent reaches it)');

/** Letters for a value of rank `rank` aligned (NumPy, right) with an output of rank `outRank`: leading letters differ. */
const OUT = 'pqrstuvw';
function aligned(shape: Shape, outShape: Shape, c: VjpCtx): string {
  const off = outShape.length - shape.length;
  return shape.map((d, j) => (d === 1 && outShape[off + j] !== 1 ? c.fresh() : OUT[off + j])).join('');
}
const outLetters = (rank: number) => OUT.slice(0, rank);

/** Sum of `ops` (each aligned with n's output) reduced to input i's shape. */
function reduceTo(c: VjpCtx, i: number, ops: { node: number; shape: Shape }[], scale = 1): void {
  const outShape = c.n.shape;
  const operands: Operand[] = ops.map((o) => ({ node: o.node, letters: aligned(o.shape, outShape, c) }));
  c.giveSum(i, { operands, out: aligned(c.shape(i), outShape, c), scale });
}

const rank = (b: Builder, id: number) => b.shape(id).length;
const last = (s: Shape): Dim => s[s.length - 1];

export const VJP: { readonly [K in OpName]: Vjp<K> } = {
  input: leaf('a float input gets its gradient; token ids none'),
  lengths: none('integer lengths'),
  param: leaf('a weight gets its gradient'),
  rows: {
    kind: 'rule',
    vjp: (c) => c.give(0, c.b.pad(c.g, 0, c.n.attrs.start, c.shape(0)[0] as number, c.span, c.label('d rows'))),
  },
  cols: {
    kind: 'rule',
    vjp: (c) => c.give(0, c.b.pad(c.g, 1, c.n.attrs.start, c.shape(0)[1] as number, c.span, c.label('d cols'))),
  },
  const: none('a constant'),
  gather: {
    kind: 'rule',
    vjp: (c) => c.give(0, c.b.scatterAdd(c.x(1), c.g, c.shape(0)[0] as number, c.span, c.label('d table'))),
  },
  matmul: {
    kind: 'rule',
    vjp(c) {
      const lead = outLetters(c.n.shape.length - 1);
      const g: Operand = { node: c.g, letters: `${lead}n` };
      if (c.wants(0)) c.giveSum(0, { operands: [g, { node: c.x(1), letters: 'nk' }], out: `${lead}k`, scale: 1 });
      if (c.wants(1)) c.giveSum(1, { operands: [g, { node: c.x(0), letters: `${lead}k` }], out: 'nk', scale: 1 });
      if (c.n.attrs.bias) c.giveSum(2, { operands: [g], out: 'n', scale: 1 });
    },
  },
  unary: {
    kind: 'rule',
    vjp(c) {
      const { b, g, span } = c;
      const L = c.label(`d ${c.n.attrs.fn}`);
      const mul = (a: number, x: number) => b.binary('mul', a, x, span, L);
      let dx: number | undefined;
      switch (c.n.attrs.fn) {
        case 'tanh': {
          const y = c.y();
          dx = mul(g, b.unary('one_minus', mul(y, y), span, L));
          break;
        }
        case 'sigmoid': {
          const y = c.y();
          dx = mul(g, mul(y, b.unary('one_minus', y, span, L)));
          break;
        }
        case 'relu':
          dx = mul(g, b.unary('step', c.y(), span, L));
          break;
        case 'gelu':
          dx = mul(g, b.unary('gelu_grad', c.x(0), span, L));
          break;
        case 'one_minus':
          dx = mul(g, b.constant(-1, span));
          break;
        case 'half':
          dx = b.unary('half', g, span, L);
          break;
        case 'sqrt':
          // g / 2√x, with √x floored at 1e-12 so that a zero norm (a padded query) gets a finite cotangent,
          // which its einsum then multiplies by x = 0: torch.norm's gradient at 0
          dx = b.binary('div', b.unary('half', g, span, L), b.binary('max', c.y(), b.constant(1e-12, span), span, L), span, L);
          break;
        case 'exp':
          dx = mul(g, c.y());
          break;
        case 'step':
          return; // zero almost everywhere
        case 'gelu_grad':
          throw new Error(`internal: a second derivative of gelu (%${c.n.id})`);
      }
      c.give(0, dx);
    },
  },
  binary: {
    kind: 'rule',
    vjp(c) {
      const { b, g, span } = c;
      const L = c.label(`d ${c.n.attrs.fn}`);
      const out = { node: g, shape: c.n.shape };
      const arg = (i: number) => ({ node: c.x(i), shape: c.shape(i) });
      switch (c.n.attrs.fn) {
        case 'add':
          reduceTo(c, 0, [out]);
          reduceTo(c, 1, [out]);
          break;
        case 'sub':
          reduceTo(c, 0, [out]);
          reduceTo(c, 1, [out], -1);
          break;
        case 'mul':
          if (c.wants(0)) reduceTo(c, 0, [out, arg(1)]);
          if (c.wants(1)) reduceTo(c, 1, [out, arg(0)]);
          break;
        case 'div': {
          // a / b: da = g / b, db = -g · y / b
          if (c.wants(0)) reduceTo(c, 0, [{ node: b.binary('div', g, c.x(1), span, L), shape: c.n.shape }]);
          if (c.wants(1)) reduceTo(c, 1, [{ node: b.binary('div', b.binary('mul', g, c.y(), span, L), c.x(1), span, L), shape: c.n.shape }], -1);
          break;
        }
        case 'max': {
          // to a where a ≥ b (torch.clamp(a, min = b)'s rule), else to b
          const toB = b.unary('step', b.binary('sub', c.x(1), c.x(0), span, L), span, L);
          if (c.wants(0)) reduceTo(c, 0, [out, { node: b.unary('one_minus', toB, span, L), shape: c.n.shape }]);
          if (c.wants(1)) reduceTo(c, 1, [out, { node: toB, shape: c.n.shape }]);
          break;
        }
      }
    },
  },
  einsum: {
    kind: 'rule',
    vjp(c) {
      const [lhs, out] = c.n.attrs.spec.split('->');
      const letters = lhs.split(',');
      letters.forEach((li, i) => {
        if (new Set(li).size !== li.length) throw new Error(`internal: einsum ${c.n.attrs.spec} repeats a letter`);
        if (!c.wants(i)) return;
        const others = letters.map((lj, j) => ({ node: c.x(j), letters: lj })).filter((_, j) => j !== i);
        c.giveSum(i, { operands: [{ node: c.g, letters: out }, ...others], out: li, scale: c.n.attrs.scale });
      });
    },
  },
  slice: {
    kind: 'rule',
    vjp: (c) => c.give(0, c.b.pad(c.g, rank(c.b, c.g) - 1, c.n.attrs.start, last(c.shape(0)) as number, c.span, c.label('d slice'))),
  },
  unsqueeze: {
    kind: 'rule',
    vjp(c) {
      const letters = outLetters(c.n.shape.length);
      c.giveSum(0, { operands: [{ node: c.g, letters }], out: letters.slice(0, c.n.attrs.axis) + letters.slice(c.n.attrs.axis + 1), scale: 1 });
    },
  },
  split_heads: { kind: 'rule', vjp: (c) => c.give(0, c.b.mergeHeads(c.g, c.span, c.label('d split'))) },
  merge_heads: {
    kind: 'rule',
    vjp: (c) => c.give(0, c.b.splitHeads(c.g, c.shape(0)[c.shape(0).length - 2] as number, c.span, c.label('d merge'))),
  },
  concat: {
    kind: 'rule',
    vjp(c) {
      const da = last(c.shape(0)) as number;
      c.give(0, c.b.slice(c.g, 0, da, c.span, c.label('d first')));
      c.give(1, c.b.slice(c.g, da, last(c.shape(1)) as number, c.span, c.label('d second')));
    },
  },
  // [B, T, D] → [B, T·D] with T = steps: the transpose splits the last axis back into T steps
  flatten: { kind: 'rule', vjp: (c) => c.give(0, c.b.raw('unflatten', [c.g], { steps: c.n.attrs.steps }, c.shape(0), c.span, c.label('d flatten'))) },
  softmax: {
    kind: 'rule',
    vjp(c) {
      const { b, g, span } = c;
      const L = c.label('d softmax');
      const r = c.n.shape.length;
      const row = outLetters(r);
      const lead = row.slice(0, -1);
      const y = c.y();
      if (c.n.attrs.log) {
        if (c.n.inputs.length > 1) throw new Error(`internal: masked log_softmax (%${c.n.id})`);
        // dx = g - softmax(x) · Σ g
        const s = b.unsqueeze(b.einsum(`${row}->${lead}`, [g], 1, span, L), r - 1, span, L);
        c.give(0, b.binary('sub', g, b.binary('mul', b.unary('exp', y, span, L), s, span, L), span, L));
      } else {
        // dx = y ⊙ (g - Σ g ⊙ y); y is 0 at masked positions, so they get nothing
        const s = b.unsqueeze(b.einsum(`${row},${row}->${lead}`, [g, y], 1, span, L), r - 1, span, L);
        c.give(0, b.binary('mul', y, b.binary('sub', g, s, span, L), span, L));
      }
    },
  },
  positions: none('integer positions'),
  pos_offsets: none('integer offsets'),
  key_lengths: none('integer lengths'),
  cache: none('training runs with empty caches (index.ts specializeForTraining)'),
  time_concat: none('training runs with empty caches: specializeForTraining replaces it by its new part'),
  sinusoid: none('a function of integer positions'),
  sin_freqs: none('constants the runtime makes'),
  layernorm: {
    kind: 'rule',
    vjp(c) {
      const { b, g, span } = c;
      const L = c.label('d layernorm');
      const r = c.n.shape.length;
      const D = last(c.n.shape) as number;
      const row = outLetters(r);
      const lead = row.slice(0, -1);
      const bin = (fn: 'add' | 'sub' | 'mul' | 'div', x: number, y: number) => b.binary(fn, x, y, span, L);
      const perRow = (x: number) => b.unsqueeze(x, r - 1, span, L);
      // x̂ = (x - μ) · rstd, recomputed from x
      const x = c.x(0);
      const xc = bin('sub', x, perRow(b.einsum(`${row}->${lead}`, [x], 1 / D, span, L)));
      const variance = b.einsum(`${row},${row}->${lead}`, [xc, xc], 1 / D, span, L);
      const rstd = perRow(bin('div', b.constant(1, span), b.unary('sqrt', bin('add', variance, b.constant(c.n.attrs.eps, span)), span, L)));
      const xhat = bin('mul', xc, rstd);
      const gLet = { node: g, letters: row };
      c.giveSum(1, { operands: [gLet, { node: xhat, letters: row }], out: row.slice(-1), scale: 1 });
      c.giveSum(2, { operands: [gLet], out: row.slice(-1), scale: 1 });
      if (!c.wants(0)) return;
      // dx = rstd · (ĝ - mean(ĝ) - x̂ · mean(ĝ ⊙ x̂)), ĝ = g ⊙ γ
      const gh = bin('mul', g, c.x(1));
      const m1 = perRow(b.einsum(`${row}->${lead}`, [gh], 1 / D, span, L));
      const m2 = perRow(b.einsum(`${row},${row}->${lead}`, [gh, xhat], 1 / D, span, L));
      c.give(0, bin('mul', rstd, bin('sub', bin('sub', gh, m1), bin('mul', xhat, m2))));
    },
  },
  dropout: { kind: 'rule', vjp: (c) => c.give(0, c.b.binary('mul', c.g, c.x(1), c.span, c.label('d dropout'))) },
  dropout_mask: none('a mask the runtime makes'),
  pool: {
    kind: 'rule',
    vjp(c) {
      const { mode, split } = c.n.attrs;
      c.give(0, c.b.unpool(c.g, c.x(1), c.shape(0)[1], mode, split, c.span, c.label('d pool'), mode === 'max' ? c.x(0) : undefined));
    },
  },
  mask: {
    kind: 'rule',
    vjp: (c) => c.give(0, c.b.mask(c.g, c.x(1), c.span, c.label('d mask'), c.n.attrs.axis, !!c.n.attrs.causal)),
  },
  scan: { kind: 'scan' },
  state: leaf("a scan body's state: its cotangent is carried to the previous step"),
  step: leaf("a scan body's step input: its cotangent is stacked over steps"),
  capture: leaf("a scan body's outer value: its cotangent is summed over steps"),
  scatter_add: { kind: 'rule', vjp: (c) => c.give(1, c.b.gather(c.g, c.x(0), c.span, c.label('d values'))) },
  pad: {
    kind: 'rule',
    vjp(c) {
      const { axis, start } = c.n.attrs;
      const count = c.shape(0)[axis];
      if (axis === 0 && c.n.shape.length > 1) c.give(0, c.b.rows(c.g, start, count as number, c.span));
      else if (axis === c.n.shape.length - 1) c.give(0, c.b.slice(c.g, start, count as number | 'S' | 'T', c.span, c.label('d pad')));
      else throw new Error(`internal: the transpose of a pad on axis ${axis}`);
    },
  },
  broadcast: { kind: 'rule', vjp: (c) => reduceTo(c, 0, [{ node: c.g, shape: c.n.shape }]) },
  unpool: BACKWARD_ONLY,
  stacked: RESIDUAL,
  shift: RESIDUAL,
  segments: BACKWARD_ONLY,
  unsegment: BACKWARD_ONLY,
  every: RESIDUAL,
  unflatten: BACKWARD_ONLY,
  saved: BACKWARD_ONLY,
  cotangent: BACKWARD_ONLY,
};

