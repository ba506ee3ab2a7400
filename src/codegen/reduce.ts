/**
 * Reductions as kernel IR. Row reductions (softmax, layernorm) are a statistics kernel over each
 * row ([rows…, 2]: max and sum of exponentials, or mean and 1/std) and an apply kernel, both written
 * with the shared body writer so that a cheap elementwise producer of the row (a residual add) is
 * computed inline in each rather than read from a buffer (passes/fuse.ts decides which) — the right
 * shape for one GPU thread per element. The host backends instead run the apply kernel's host form,
 * which computes each row once into the output, reduces it and normalises it in place (the
 * statistics kernel's host form does nothing). Pooling over time is one element kernel.
 */
import type { Graph, Node } from '../ir/graph.ts';
import type { OpAttrs } from '../ir/ops.ts';
import { OUT, add, bin, call, f, flatIndex, int, load, mul, not, sub, v, type Expr, type Kernel } from './kir.ts';
import { dimExpr, dimsOf, validKey, type BodyWriter } from './expr.ts';
import { KernelCtx, nodeBuf, type Call, type ScanCtx } from './lower.ts';

export function rowReduction(g: Graph, root: Node, materialized: ReadonlySet<number>, scan?: ScanCtx): { stats: Call; apply: Call } {
  const xin = g.get(root.inputs[0]!);
  const D = dimExpr(xin.shape[xin.shape.length - 1]);
  const Df = D.k === 'i' ? f(D.v) : D;
  const rowDims = dimsOf(xin.shape.slice(0, -1));
  const rowIdx = rowDims.map((_, i) => v(`i${i}`));
  const lastI = v(`i${rowDims.length}`);
  const statsKey = `${nodeBuf(root.id)}.stats`;
  const isSoftmax = root.op === 'softmax';
  const sm = root.attrs as OpAttrs['softmax'];
  const masked = isSoftmax && root.inputs.length > 1 ? g.get(root.inputs[1]!) : undefined;
  if (masked && sm.log) throw new Error('internal: masked log_softmax');
  const eps = isSoftmax ? 0 : (root.attrs as OpAttrs['layernorm']).eps;
  // masked: the first lengths[b] positions of the last axis only (causal: and not after the query,
  // the second-to-last index, over a key cache)
  const query = isSoftmax && sm.causal ? rowIdx[rowIdx.length - 1] : undefined;
  const valid = (ctx: KernelCtx, k: Expr): Expr | undefined => (masked ? validKey(k, load(ctx.arg(masked), rowIdx[0]!), query) : undefined);
  /** for (k < D) { if (valid(k)) { fn(k) } } with a fresh loop variable (gpu.js declares a dynamically bounded loop's variable outside it). */
  const rowLoop = (ctx: KernelCtx, w: BodyWriter, fn: (k: Expr) => void, otherwise?: (k: Expr) => void) => {
    const k = w.fresh('k');
    w.loop(k, D, () => {
      const ok = valid(ctx, v(k));
      if (ok) w.ifElse(ok, () => fn(v(k)), otherwise && (() => otherwise(v(k))));
      else fn(v(k));
    });
  };
  const x = (w: BodyWriter, k: Expr) => w.val(xin.id, [...rowIdx, k]);

  // statistics: [rows…, 2]
  const sctx = new KernelCtx(g, materialized, scan);
  const sw = sctx.writer();
  if (isSoftmax) {
    const m = sw.local('m', f(-3.0e38));
    rowLoop(sctx, sw, (k) => sw.emit({ k: 'set', name: m, value: call('max', v(m), x(sw, k)) }));
    sw.emit({ k: 'if', c: bin('<', lastI, f(0.5)), then: [{ k: 'return', value: v(m) }] });
    const s = sw.local('s', f(0));
    rowLoop(sctx, sw, (k) => sw.emit({ k: 'set', name: s, add: true, value: call('exp', bin('-', x(sw, k), v(m))) }));
    sw.emit({ k: 'return', value: v(s) });
  } else {
    const mean = sw.local('mean', f(0));
    rowLoop(sctx, sw, (k) => sw.emit({ k: 'set', name: mean, add: true, value: x(sw, k) }));
    sw.emit({ k: 'set', name: mean, value: bin('/', v(mean), Df) });
    sw.emit({ k: 'if', c: bin('<', lastI, f(0.5)), then: [{ k: 'return', value: v(mean) }] });
    const var_ = sw.local('var', f(0));
    rowLoop(sctx, sw, (k) => {
      const d = x(sw, k);
      sw.emit({ k: 'set', name: var_, add: true, value: bin('*', bin('-', d, v(mean)), bin('-', d, v(mean))) });
    });
    sw.emit({ k: 'return', value: bin('/', f(1), call('sqrt', bin('+', bin('/', v(var_), Df), f(eps)))) });
  }
  const none = { packs: 0, scratch: [], prelude: [] };
  const stats = sctx.call({ dims: [...rowDims, int(2)], body: sw.body, host: none }, root, statsKey, [...root.shape.slice(0, -1), 2], `${root.label} (row statistics)`);

  // apply: the output
  const actx = new KernelCtx(g, materialized, scan);
  const aw = actx.writer(root.id);
  const ok = valid(actx, lastI);
  if (ok) aw.emit({ k: 'if', c: not(ok), then: [{ k: 'return', value: f(0) }] });
  const statsBuf = actx.argKey(statsKey, 'f32');
  const sb = aw.bind(mul(flatIndex(rowDims, rowIdx), int(2)), 'sb');
  const st = (j: number) => load(statsBuf, add(sb, int(j)));
  const xi = x(aw, lastI);
  let value: Expr;
  if (isSoftmax) value = sm.log ? bin('-', bin('-', xi, st(0)), call('log', st(1))) : bin('/', call('exp', bin('-', xi, st(0))), st(1));
  else {
    const gamma = actx.arg(g.get(root.inputs[1]!));
    const beta = actx.arg(g.get(root.inputs[2]!));
    value = bin('+', bin('*', bin('*', bin('-', xi, st(0)), st(1)), load(gamma, lastI)), load(beta, lastI));
  }
  aw.emit({ k: 'return', value });

  // host form: each row once into the output, reduced, normalised in place
  const hw = actx.writer(root.id);
  const nest = (depth: number): void => {
    if (depth < rowIdx.length) {
      hw.loop(`i${depth}`, rowDims[depth]!, () => nest(depth + 1));
      return;
    }
    const base = hw.bind(mul(flatIndex(rowDims, rowIdx), D), 'base');
    const at = (k: Expr) => add(base, k);
    const o = (k: Expr) => load(OUT, at(k));
    const put = (k: Expr, value: Expr) => hw.emit({ k: 'store', buf: OUT, index: at(k), value });
    const forRow = (fn: (k: Expr) => void) => {
      const k = hw.fresh('k');
      hw.loop(k, D, () => fn(v(k)));
    };
    if (isSoftmax) {
      const m = hw.local('m', f(-3.0e38));
      rowLoop(actx, hw, (k) => {
        const xv = x(hw, k);
        put(k, xv);
        hw.emit({ k: 'set', name: m, value: call('max', v(m), xv) });
      }, (k) => put(k, f(0)));
      const s = hw.local('s', f(0));
      if (sm.log) {
        forRow((k) => hw.emit({ k: 'set', name: s, add: true, value: call('exp', bin('-', o(k), v(m))) }));
        const ls = hw.bind(bin('+', v(m), call('log', v(s))), 'ls');
        forRow((k) => put(k, bin('-', o(k), ls)));
      } else {
        rowLoop(actx, hw, (k) => {
          const e = hw.bind(call('exp', bin('-', o(k), v(m))), 'e');
          put(k, e);
          hw.emit({ k: 'set', name: s, add: true, value: e });
        });
        forRow((k) => put(k, bin('/', o(k), v(s))));
      }
    } else {
      const gamma = actx.arg(g.get(root.inputs[1]!));
      const beta = actx.arg(g.get(root.inputs[2]!));
      const mean = hw.local('mean', f(0));
      forRow((k) => {
        const xv = x(hw, k);
        put(k, xv);
        hw.emit({ k: 'set', name: mean, add: true, value: xv });
      });
      hw.emit({ k: 'set', name: mean, value: bin('/', v(mean), Df) });
      const var_ = hw.local('var', f(0));
      forRow((k) => {
        const d = hw.bind(bin('-', o(k), v(mean)), 'd');
        hw.emit({ k: 'set', name: var_, add: true, value: bin('*', d, d) });
      });
      const inv = hw.bind(bin('/', f(1), call('sqrt', bin('+', bin('/', v(var_), Df), f(eps)))), 'inv');
      forRow((k) => put(k, bin('+', bin('*', bin('*', bin('-', o(k), v(mean)), inv), load(gamma, k)), load(beta, k))));
    }
  };
  nest(0);
  const apply = actx.call({ dims: dimsOf(root.shape), body: aw.body, host: { packs: 0, scratch: [], prelude: hw.body } }, root, nodeBuf(root.id), [...root.shape], root.label);
  return { stats, apply };
}

/** Pooling over the time axis (T, or S for a source) of [B, L, D], over each row's valid steps. */
export function poolKernel(g: Graph, root: Node, materialized: ReadonlySet<number>, scan?: ScanCtx): Call {
  const ctx = new KernelCtx(g, materialized, scan);
  const xin = g.get(root.inputs[0]!);
  const x = ctx.arg(xin);
  const D = dimExpr(xin.shape[xin.shape.length - 1]);
  const L = dimExpr(xin.shape[1]);
  const { mode, split } = root.attrs as OpAttrs['pool'];
  const at = (t: Expr) => load(x, add(mul(add(mul(v('i0'), L), t), D), v('i1')));
  const w = ctx.writer();
  // the row's valid length (`first` needs none: step 0 is always valid)
  const len = mode === 'first' ? undefined : w.bind(load(ctx.arg(g.get(root.inputs[1]!)), v('i0')), 'len');
  if (mode === 'first') w.emit({ k: 'return', value: at(int(0)) });
  else if (mode === 'last') {
    const lastStep = at(sub(len!, f(1)));
    if (split === undefined) w.emit({ k: 'return', value: lastStep });
    else {
      w.emit({ k: 'if', c: bin('<', v('i1'), int(split)), then: [{ k: 'return', value: lastStep }] });
      w.emit({ k: 'return', value: at(int(0)) });
    }
  } else {
    const acc = w.local(mode === 'mean' ? 's' : 'm', f(mode === 'mean' ? 0 : -3.0e38));
    const t = w.fresh('t');
    w.loop(t, L, () => w.ifElse(bin('<', v(t), len!), () => w.emit(mode === 'mean'
      ? { k: 'set', name: acc, add: true, value: at(v(t)) }
      : { k: 'set', name: acc, value: call('max', v(acc), at(v(t))) })));
    w.emit({ k: 'return', value: mode === 'mean' ? bin('/', v(acc), len!) : v(acc) });
  }
  const kernel: Omit<Kernel, 'params'> = { dims: [dimExpr('B'), D], body: w.body };
  return ctx.call(kernel, root, nodeBuf(root.id), [...root.shape], root.label);
}
