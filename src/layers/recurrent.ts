/**
 * rnn / gru / lstm, PyTorch's exact forms and parameter layout. Each (layer, direction) lowers to a
 * `scan` whose body is written gate by gate, as the papers do; passes/merge-matmuls.ts stacks the
 * gates into one matmul, passes/hoist.ts lifts the input side out of the recurrence, and
 * passes/fuse.ts turns the body into one kernel per step.
 */
import type { Builder } from '../ir/build.ts';
import type { CellKind } from '../ir/ops.ts';
import { needsFeatures, needsSequence, width, type ChainValue, type LayerDef, type LowerCtx, type PendingAttention } from './layer.ts';
import { rnnSchema, gruSchema, lstmSchema } from './recurrent.schema.ts';

const GATES: Record<CellKind, number> = { rnn: 1, gru: 3, lstm: 4 };

function lowerRecurrent(ctx: LowerCtx, x: ChainValue): ChainValue {
  const { b, rs } = ctx;
  if (!needsFeatures(ctx, x) || !needsSequence(ctx, x)) return x;
  const cell = rs.kind as CellKind;
  const H = rs.attrs.hidden as number;
  const L = rs.attrs.layers as number;
  const bidir = rs.attrs.bidirectional as boolean;
  const merge = rs.attrs.merge as string;
  const span = rs.stmt.span;
  const G = GATES[cell];
  if (ctx.dec && bidir) {
    b.diags.error('E0511', `a decoder's recurrent layers run forward only (it generates one token at a time), but '${rs.path}' is bidirectional`, rs.stmt.kindSpan, {
      suggestion: `remove 'bidirectional' here; a bidirectional layer belongs in the encoder`,
    });
    return x;
  }
  let inp = x.node;
  let halves = x.node;
  const recLayers: { fwd: number; bwd?: number }[] = [];
  for (let l = 0; l < L; l++) {
    const I = width(ctx, { ...x, node: inp });
    // attention before this statement (Bahdanau) widens layer 0's input by the context
    const attend = l === 0 ? x.attend : undefined;
    const Iw = I + (attend?.width ?? 0);
    const outs: number[] = [];
    const hists: number[] = [];
    for (const reverse of bidir ? [false, true] : [false]) {
      const sfx = `_l${l}${reverse ? '_reverse' : ''}`;
      const names = {
        wih: `${rs.path}.weight_ih${sfx}`, whh: `${rs.path}.weight_hh${sfx}`,
        bih: `${rs.path}.bias_ih${sfx}`, bhh: `${rs.path}.bias_hh${sfx}`,
      };
      b.param(names.wih, [G * H, Iw], cell, span);
      b.param(names.whh, [G * H, H], cell, span);
      if (rs.attrs.bias) {
        b.param(names.bih, [G * H], cell, span);
        b.param(names.bhh, [G * H], cell, span);
      }
      const label = `${rs.path}.l${l}${reverse ? '.reverse' : ''}`;
      const init = ctx.dec?.initFor(rs, l, L, cell, H);
      const hist = scan(ctx, cell, inp, I, H, names, reverse, label, init, attend);
      hists.push(hist);
      outs.push(cell === 'lstm' ? b.slice(hist, 0, H, span, `${label}.h`) : hist);
    }
    recLayers.push({ fwd: hists[0], bwd: hists[1] });
    if (outs.length === 1) inp = outs[0];
    else {
      // between stacked layers the directions are concatenated (PyTorch: weight_ih_l1 is [G·H, 2H]);
      // `merge` applies to the last layer's output only
      inp = halves = b.concat(outs[0], outs[1], span, `${rs.path}.l${l}.concat`);
      if (l === L - 1 && merge !== 'concat') {
        const sum = b.binary('add', outs[0], outs[1], span, `${rs.path}.l${l}.sum`);
        inp = merge === 'sum' ? sum : b.unary('half', sum, span, `${rs.path}.l${l}.mean`);
      }
    }
  }
  const merged = merge as 'concat' | 'sum' | 'mean';
  return {
    node: inp, tokens: false, seq: true, bidir: bidir ? { halves, hidden: H, merge: merged } : undefined, steps: x.steps,
    rec: { cell, hidden: H, layers: recLayers },
  };
}

interface Names { wih: string; whh: string; bih: string; bhh: string }

/**
 * One direction of one layer: the recurrence with its body, gate by gate. With `attend`, the step
 * first attends with the previous h as the query, and the input weights read [x_t; context]: their
 * first I columns multiply x_t (hoisted out of the loop by passes/hoist.ts), the rest the context.
 */
function scan(ctx: LowerCtx, cell: CellKind, inp: number, I: number, H: number, n: Names, reverse: boolean, label: string, init: number | undefined, attend: PendingAttention | undefined): number {
  const { b, rs } = ctx;
  const span = rs.stmt.span;
  const hasBias = rs.attrs.bias as boolean;
  const bb: Builder = b.body();
  const G = GATES[cell];
  const W = attend?.width ?? 0;
  const wihAll = bb.param(n.wih, [G * H, I + W], cell, span);
  const wih = W ? bb.cols(wihAll, 0, I, span) : wihAll;
  const wctx = W ? bb.cols(wihAll, I, W, span) : undefined;
  const whh = bb.param(n.whh, [G * H, H], cell, span);
  const bih = hasBias ? bb.param(n.bih, [G * H], cell, span) : undefined;
  const bhh = hasBias ? bb.param(n.bhh, [G * H], cell, span) : undefined;
  const S = cell === 'lstm' ? 2 * H : H;
  const s = bb.state(S, span, `${label}.state`);
  const xt = bb.step(I, span, `${label}.x`);
  const h = cell === 'lstm' ? bb.slice(s, 0, H, span, `${label}.h`) : s;
  const rows = (p: number | undefined, g: number) => (p === undefined ? undefined : bb.rows(p, g * H, H, span));
  let attended: { context: number; weights: number } | undefined;
  if (attend) attended = attend.compute(bb, h, (outer) => bb.capture(b, outer));
  const xg = (g: number, name: string) => {
    const fromX = bb.matmul(xt, rows(wih, g)!, rows(bih, g), span, `${label}.x${name}`);
    if (!attended) return fromX;
    return bb.binary('add', fromX, bb.matmul(attended.context, rows(wctx, g)!, undefined, span, `${label}.ctx${name}`), span, `${label}.[x;ctx]${name}`);
  };
  const hg = (g: number, name: string, from = h) => bb.matmul(from, rows(whh, g)!, rows(bhh, g), span, `${label}.h${name}`);
  const add = (a: number, c: number, name: string) => bb.binary('add', a, c, span, `${label}.${name}`);
  const mul = (a: number, c: number, name: string) => bb.binary('mul', a, c, span, `${label}.${name}`);
  const sig = (a: number, name: string) => bb.unary('sigmoid', a, span, `${label}.${name}`);
  const tanh = (a: number, name: string) => bb.unary('tanh', a, span, `${label}.${name}`);
  let out: number;
  if (cell === 'rnn') {
    const pre = add(xg(0, ''), hg(0, ''), 'pre');
    out = rs.attrs.act === 'relu' ? bb.unary('relu', pre, span, `${label}.h'`) : tanh(pre, "h'");
  } else if (cell === 'gru') {
    const r = sig(add(xg(0, 'r'), hg(0, 'r'), 'r_pre'), 'r');
    const z = sig(add(xg(1, 'z'), hg(1, 'z'), 'z_pre'), 'z');
    const hn = rs.attrs.reset === 'before' ? hg(2, 'n', mul(r, h, 'r*h')) : mul(r, hg(2, 'n'), 'r*hn');
    const nn = tanh(add(xg(2, 'n'), hn, 'n_pre'), 'n');
    // h' = (1 − z) ∘ n + z ∘ h
    out = add(mul(bb.unary('one_minus', z, span, `${label}.1-z`), nn, '(1-z)*n'), mul(z, h, 'z*h'), "h'");
  } else {
    const i = sig(add(xg(0, 'i'), hg(0, 'i'), 'i_pre'), 'i');
    const f = sig(add(xg(1, 'f'), hg(1, 'f'), 'f_pre'), 'f');
    const g = tanh(add(xg(2, 'g'), hg(2, 'g'), 'g_pre'), 'g');
    const o = sig(add(xg(3, 'o'), hg(3, 'o'), 'o_pre'), 'o');
    const c = bb.slice(s, H, H, span, `${label}.c`);
    const c2 = add(mul(f, c, 'f*c'), mul(i, g, 'i*g'), "c'");
    const h2 = mul(o, tanh(c2, "tanh(c')"), "h'");
    out = bb.concat(h2, c2, span, `${label}.[h';c']`);
  }
  bb.g.outputs = [{ name: 'next', node: out }, ...(attended ? [{ name: 'attention', node: attended.weights }] : [])];
  return b.scan(inp, ctx.lengths, init, bb.captured, { reverse, cell, body: bb.g, stateSize: S }, span, label);
}

export const rnnLayer: LayerDef = { schema: rnnSchema, lower: lowerRecurrent };
export const gruLayer: LayerDef = { schema: gruSchema, lower: lowerRecurrent };
export const lstmLayer: LayerDef = { schema: lstmSchema, lower: lowerRecurrent };
