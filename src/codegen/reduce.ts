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
import { OUT, SCRATCH, add, bin, call, f, flatIndex, int, load, mul, not, product, scalar, sel, sub, v, type Buf, type Expr, type HostForm, type Kernel } from './kir.ts';
import { viewStrides } from './gemm.ts';
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

/** Keys per tile of a tiled attention's host form: its scores are kept in a scratch buffer this long. */
export const ATTENTION_TILE = 128;

/**
 * An attention's context c = einsum(α, v) with α = softmax(e) (masked by lengths, causally or not)
 * summed over α's last axis (the keys), computed without α or e in memory (FlashAttention's
 * online softmax): per row of α, a running maximum m and sum l, and the context accumulated with
 * each key's weight exp(e − m), rescaled by exp(m_old − m_new) whenever the maximum grows, divided
 * by l at the end. A row with no valid key gets 0, as the two-kernel softmax gives it.
 *
 * The per-element body (gpu.js: one thread per context element) runs the recurrence over every key
 * for its one element. The host form runs it once per row for the whole row of v's columns, keys
 * in tiles of ATTENTION_TILE: a tile's scores go to scratch with their maximum, the accumulator is
 * rescaled once per tile, then each key's weight is added in. The scores e are computed inline from
 * what they read (projected queries and keys, key terms), never stored beyond a tile: memory is
 * linear in the number of keys, not their product with the queries.
 */
export function attentionKernel(g: Graph, root: Node, alpha: Node, materialized: ReadonlySet<number>, scan?: ScanCtx): { call: Call; note: string } {
  const e = g.get(alpha.inputs[0]!);
  const masked = alpha.inputs.length > 1 ? g.get(alpha.inputs[1]!) : undefined;
  const { causal } = alpha.attrs as OpAttrs['softmax'];
  // α and e are computed here even where they have buffers for reported attention weights
  const mat = new Set(materialized);
  mat.delete(alpha.id);
  mat.delete(e.id);
  const ctx = new KernelCtx(g, mat, scan);
  const [lhs, lo] = (root.attrs as OpAttrs['einsum']).spec.split('->') as [string, string];
  const [la, lv] = lhs.split(',') as [string, string];
  const s = la[la.length - 1]!;
  const vNode = g.get(root.inputs[1]!);
  const outDims = dimsOf(root.shape);
  const keys = dimExpr(alpha.shape[alpha.shape.length - 1]);
  const at = (letters: string, idx: (c: string) => Expr) => [...letters].map(idx);
  /** e, v and validity at key k, for the output element whose letters are bound by `of`. */
  const reads = (w: BodyWriter, of: (c: string) => Expr) => {
    const bind = (k: Expr) => (c: string) => (c === s ? k : of(c));
    const rowIdx = at(la.slice(0, -1), of);
    const len = masked ? w.bind(load(ctx.arg(masked), rowIdx[0]!), 'len') : undefined;
    return {
      score: (k: Expr) => w.val(e.id, at(la, bind(k))),
      value: (k: Expr, col: (c: string) => Expr) => w.val(vNode.id, at(lv, (c) => (c === s ? k : col(c)))),
      valid: (k: Expr) => (len ? validKey(k, len, causal ? rowIdx[rowIdx.length - 1] : undefined) : undefined),
    };
  };
  const ifValid = (w: BodyWriter, ok: Expr | undefined, fn: () => void, otherwise?: () => void) => (ok ? w.ifElse(ok, fn, otherwise) : fn());
  const NONE = f(-3.0e38);

  // per element: the recurrence over every key for one context element
  const w = ctx.writer(root.id);
  const elem = (c: string) => v(`i${lo.indexOf(c)}`);
  const r = reads(w, elem);
  const m = w.local('m', NONE);
  const l = w.local('l', f(0));
  const acc = w.local('acc', f(0));
  const k = w.fresh('k');
  w.loop(k, keys, () => ifValid(w, r.valid(v(k)), () => {
    const x = r.score(v(k));
    const mn = w.bind(call('max', v(m), x), 'mn');
    const c = w.bind(call('exp', bin('-', v(m), mn)), 'c');
    const p = w.bind(call('exp', bin('-', x, mn)), 'p');
    w.emit({ k: 'set', name: l, value: bin('+', bin('*', v(l), c), p) });
    w.emit({ k: 'set', name: acc, value: bin('+', bin('*', v(acc), c), bin('*', p, r.value(v(k), elem))) });
    w.emit({ k: 'set', name: m, value: mn });
  }));
  w.emit({ k: 'return', value: sel(bin('>', v(l), f(0)), bin('/', v(acc), v(l)), f(0)) });

  // host form: per row, keys in tiles, the row of v's columns accumulated in the output
  const hw = ctx.writer(root.id);
  const rowLetters = [...lo].filter((c) => la.includes(c));
  const colLetters = [...lo].filter((c) => !la.includes(c));
  const size = (c: string) => outDims[lo.indexOf(c)]!;
  const nest = (d: number): void => {
    if (d < rowLetters.length) {
      hw.loop(`i${lo.indexOf(rowLetters[d]!)}`, size(rowLetters[d]!), () => nest(d + 1));
      return;
    }
    const hr = reads(hw, elem);
    /** fn(flat output index, the column letters' indices) over the row's columns */
    const cols = (fn: (o: Expr, col: (c: string) => Expr) => void) => {
      const names = colLetters.map(() => hw.fresh('j'));
      const col = (c: string) => (colLetters.includes(c) ? v(names[colLetters.indexOf(c)]!) : elem(c));
      const inner = (j: number): void => {
        if (j < names.length) return hw.loop(names[j]!, size(colLetters[j]!), () => inner(j + 1));
        fn(flatIndex(outDims, at(lo, col)), col);
      };
      inner(0);
    };
    const hm = hw.local('m', NONE);
    const hl = hw.local('l', f(0));
    cols((o) => hw.emit({ k: 'store', buf: OUT, index: o, value: f(0) }));
    const tile = hw.fresh('tile');
    const tiles = call('floor', bin('/', bin('+', keys, f(ATTENTION_TILE - 0.5)), f(ATTENTION_TILE)));
    hw.loop(tile, tiles, () => {
      const k0 = hw.bind(mul(v(tile), int(ATTENTION_TILE)), 'k0');
      const left = hw.bind(sub(keys, k0), 'left');
      const n = hw.bind(sel(bin('<', left, int(ATTENTION_TILE)), left, int(ATTENTION_TILE)), 'n');
      // the tile's scores (masked keys: the lowest float) and their maximum
      const tm = hw.local('tm', NONE);
      const j = hw.fresh('j');
      hw.loop(j, n, () => {
        const key = hw.bind(add(k0, v(j)), 'key');
        const ok = hr.valid(key);
        const x = ok ? hw.guarded(ok, NONE, () => hr.score(key)) : hr.score(key);
        hw.emit({ k: 'store', buf: SCRATCH(0), index: v(j), value: x });
        hw.emit({ k: 'set', name: tm, value: call('max', v(tm), x) });
      });
      const mn = hw.bind(call('max', v(hm), v(tm)), 'mn');
      const c = hw.bind(call('exp', bin('-', v(hm), mn)), 'c');
      hw.emit({ k: 'set', name: hl, value: bin('*', v(hl), c) });
      cols((o) => hw.emit({ k: 'store', buf: OUT, index: o, value: bin('*', load(OUT, o), c) }));
      const j2 = hw.fresh('j');
      hw.loop(j2, n, () => {
        const key = hw.bind(add(k0, v(j2)), 'key');
        ifValid(hw, hr.valid(key), () => {
          const p = hw.bind(call('exp', bin('-', load(SCRATCH(0), v(j2)), mn)), 'p');
          hw.emit({ k: 'set', name: hl, add: true, value: p });
          cols((o, col) => hw.emit({ k: 'store', buf: OUT, index: o, value: bin('+', load(OUT, o), bin('*', p, hr.value(key, col))) }));
        });
      });
      hw.emit({ k: 'set', name: hm, value: mn });
    });
    const inv = hw.bind(sel(bin('>', v(hl), f(0)), bin('/', f(1), v(hl)), f(0)), 'inv');
    cols((o) => hw.emit({ k: 'store', buf: OUT, index: o, value: bin('*', load(OUT, o), inv) }));
  };
  const tiles = gemmTiles(ctx, root, alpha, e, vNode);
  if (!tiles) nest(0);
  const host = tiles ?? { packs: 0, scratch: [int(ATTENTION_TILE)], prelude: hw.body };
  const how = tiles ? 'two GEMMs per tile (scores, weights · values)' : 'scores computed inline';
  return {
    call: ctx.call({ dims: outDims, body: w.body, host }, root, nodeBuf(root.id), [...root.shape], `${root.label} (tiled, running softmax)`),
    note: `attention in tiles of ${ATTENTION_TILE} keys with a running softmax, ${how}: the weights %${alpha.id} and their scores are ${materialized.has(alpha.id) ? 'computed apart only when reported' : 'never stored'}`,
  };
}

/**
 * The host form of a tiled attention whose scores are a batched product e = scale · q·kᵀ over
 * strided views (dot and scaled scores, per head or not; general's q·(Wk)), FlashAttention's loop
 * on the host's GEMM: per batch element (row b, head n), per tile of ATTENTION_TILE keys, the tile's
 * keys are packed and one GEMM writes the scores of every query [M, tile] into scratch; each query
 * row is masked, its running maximum and sum updated, its scores turned into weights in place and
 * its context row rescaled; then the tile's values are packed and one GEMM gives weights · values
 * [M, dv], added into the context. Scratch is M · (tile + dv + 2) floats: linear in the queries.
 */
function gemmTiles(ctx: KernelCtx, root: Node, alpha: Node, e: Node, vNode: Node): HostForm | undefined {
  const g = ctx.g;
  if (e.op !== 'einsum' || alpha.shape.length < 3) return undefined;
  const { spec, scale } = e.attrs as OpAttrs['einsum'];
  const [elhs, eo] = spec.split('->') as [string, string];
  const eops = elhs.split(',');
  if (eops.length !== 2) return undefined;
  const [lq, lk] = eops as [string, string];
  const r = alpha.shape.length;
  const tq = eo[r - 2]!;
  const ts = eo[r - 1]!;
  const summed = [...new Set([...lq, ...lk])].filter((c) => !eo.includes(c));
  const batchE = [...eo.slice(0, r - 2)];
  if (summed.length !== 1 || !lq.includes(tq) || lk.includes(tq) || !lk.includes(ts) || lq.includes(ts)) return undefined;
  if (batchE.some((c) => !lq.includes(c) || !lk.includes(c)) || [...lq, ...lk].some((c) => !eo.includes(c) && c !== summed[0])) return undefined;
  const hq = summed[0]!;
  const Q = viewStrides(g, g.get(e.inputs[0]!), ctx.materialized, ctx.scan);
  const K = viewStrides(g, g.get(e.inputs[1]!), ctx.materialized, ctx.scan);
  const V = viewStrides(g, vNode, ctx.materialized, ctx.scan);
  if (!Q || !K || !V) return undefined;
  const sQ = (c: string) => (lq.includes(c) ? Q.strides[lq.indexOf(c)]! : int(0));
  const sK = (c: string) => (lk.includes(c) ? K.strides[lk.indexOf(c)]! : int(0));
  if (!(sQ(hq).k === 'i' && (sQ(hq) as { v: number }).v === 1)) return undefined;
  // the context: α's letters, then v's column letter (the output's last, contiguous)
  const [lhs, lo] = (root.attrs as OpAttrs['einsum']).spec.split('->') as [string, string];
  const [la, lv] = lhs.split(',') as [string, string];
  const cols = [...lo].filter((c) => !la.includes(c));
  if (cols.length !== 1 || lo[lo.length - 1] !== cols[0]) return undefined;
  const col = cols[0]!;
  const outDims = dimsOf(root.shape);
  const sO = (c: string) => (lo.includes(c) ? product(outDims.slice(lo.indexOf(c) + 1)) : int(0));
  const sV = (c: string) => (lv.includes(c) ? V.strides[lv.indexOf(c)]! : int(0));
  const dv = outDims[lo.length - 1]!;
  const M = dimExpr(alpha.shape[r - 2]);
  const keys = dimExpr(alpha.shape[r - 1]);
  const hd = dimExpr(g.get(e.inputs[0]!).shape[lq.indexOf(hq)]);
  const TILE = int(ATTENTION_TILE);
  // scratch: scores/weights [M, tile], weights · values [M, dv], running max and sum [M], packed keys and values
  const scratch = [mul(M, TILE), mul(M, dv), M, M, mul(int(ATTENTION_TILE + 15), hd), mul(add(dv, int(15)), TILE)];
  const [SC, PV, MX, SM, KP, VP] = [0, 1, 2, 3, 4, 5].map(SCRATCH) as [Buf, Buf, Buf, Buf, Buf, Buf];
  const masked = alpha.inputs.length > 1 ? g.get(alpha.inputs[1]!) : undefined;
  const { causal } = alpha.attrs as OpAttrs['softmax'];
  const w = ctx.writer(root.id);
  const NONE = f(-3.0e38);
  const bvars = batchE.map((_, i) => `bt${i}`);
  const offOf = (base: Expr, stride: (i: number) => Expr) => bvars.reduce((o, b, i) => add(o, mul(v(b), stride(i))), base);
  const nest = (d: number): void => {
    if (d < bvars.length) return w.loop(bvars[d]!, dimExpr(alpha.shape[d]), () => nest(d + 1));
    const qOff = w.bind(offOf(Q.off, (i) => sQ(batchE[i]!)), 'qo');
    const kOff = w.bind(offOf(K.off, (i) => sK(batchE[i]!)), 'ko');
    const vOff = w.bind(offOf(V.off, (i) => sV(la[i]!)), 'vo');
    const oOff = w.bind(offOf(int(0), (i) => sO(la[i]!)), 'oo');
    const oRow = sO(la[r - 2]!);
    const len = masked ? w.bind(load(ctx.arg(masked), bvars.length ? v(bvars[0]!) : int(0)), 'len') : undefined;
    const t = w.fresh('q');
    w.loop(t, M, () => {
      w.emit({ k: 'store', buf: MX, index: v(t), value: NONE });
      w.emit({ k: 'store', buf: SM, index: v(t), value: f(0) });
      const c = w.fresh('c');
      w.loop(c, dv, () => w.emit({ k: 'store', buf: OUT, index: add(add(oOff, mul(v(t), oRow)), v(c)), value: f(0) }));
    });
    const tile = w.fresh('tile');
    w.loop(tile, call('floor', bin('/', bin('+', keys, f(ATTENTION_TILE - 0.5)), f(ATTENTION_TILE))), () => {
      const k0 = w.bind(mul(v(tile), TILE), 'k0');
      const left = w.bind(sub(keys, k0), 'left');
      const n = w.bind(sel(bin('<', left, TILE), left, TILE), 'n');
      // causal: queries before k0 − P see no key of this tile, so the tile starts at query q0
      const q0 = causal ? w.bind(sel(bin('>', sub(k0, scalar('P')), int(0)), sub(k0, scalar('P')), int(0)), 'q0') : int(0);
      const rows = causal ? w.bind(sub(M, q0), 'rows') : M;
      const tileBody = () => {
        const kp = w.fresh('kp');
        w.emit({ k: 'pack', name: kp, src: ctx.arg(K.base), off: add(kOff, mul(k0, sK(ts))), N: n, K: hd, sn: sK(ts), sk: sK(hq), dst: KP, scale });
        w.emit({ k: 'gemm', M: rows, N: n, K: hd, a: ctx.arg(Q.base), aOff: add(qOff, mul(q0, sQ(tq))), lda: sQ(tq), w: { local: kp }, c: SC, cOff: int(0), ldc: TILE });
        const q = w.fresh('q');
        w.loop(q, rows, () => {
          const sb = w.bind(mul(v(q), TILE), 'sb');
          const qi = w.bind(add(q0, v(q)), 'qi');
          const valid = (key: Expr) => (len ? validKey(key, len, causal ? qi : undefined) : undefined);
          const tm = w.local('tm', NONE);
          const j = w.fresh('j');
          w.loop(j, n, () => {
            const ok = valid(add(k0, v(j)));
            const at = add(sb, v(j));
            if (ok) w.ifElse(ok, () => w.emit({ k: 'set', name: tm, value: call('max', v(tm), load(SC, at)) }));
            else w.emit({ k: 'set', name: tm, value: call('max', v(tm), load(SC, at)) });
          });
          const mo = w.bind(load(MX, qi), 'mo');
          const mn = w.bind(call('max', mo, v(tm)), 'mn');
          const cr = w.bind(call('exp', bin('-', mo, mn)), 'cr');
          const sum = w.local('sum', f(0));
          const j2 = w.fresh('j');
          w.loop(j2, n, () => {
            const at = add(sb, v(j2));
            const ok = valid(add(k0, v(j2)));
            const p = w.local('p', f(0));
            const weight = () => w.emit({ k: 'set', name: p, value: call('exp', bin('-', load(SC, at), mn)) });
            if (ok) w.ifElse(ok, weight);
            else weight();
            w.emit({ k: 'store', buf: SC, index: at, value: v(p) });
            w.emit({ k: 'set', name: sum, add: true, value: v(p) });
          });
          w.emit({ k: 'store', buf: MX, index: qi, value: mn });
          w.emit({ k: 'store', buf: SM, index: qi, value: bin('+', bin('*', load(SM, qi), cr), v(sum)) });
          const ob = w.bind(add(oOff, mul(qi, oRow)), 'ob');
          const c = w.fresh('c');
          w.loop(c, dv, () => w.emit({ k: 'store', buf: OUT, index: add(ob, v(c)), value: bin('*', load(OUT, add(ob, v(c))), cr) }));
        });
        const vp = w.fresh('vp');
        w.emit({ k: 'pack', name: vp, src: ctx.arg(V.base), off: add(vOff, mul(k0, sV(la[r - 1]!))), N: dv, K: n, sn: sV(col), sk: sV(la[r - 1]!), dst: VP, scale: 1 });
        w.emit({ k: 'gemm', M: rows, N: dv, K: n, a: SC, aOff: int(0), lda: TILE, w: { local: vp }, c: PV, cOff: int(0), ldc: dv });
        const q2 = w.fresh('q');
        w.loop(q2, rows, () => {
          const ob = w.bind(add(oOff, mul(add(q0, v(q2)), oRow)), 'ob');
          const pb = w.bind(mul(v(q2), dv), 'pb');
          const c = w.fresh('c');
          w.loop(c, dv, () => w.emit({ k: 'store', buf: OUT, index: add(ob, v(c)), value: bin('+', load(OUT, add(ob, v(c))), load(PV, add(pb, v(c)))) }));
        });
      };
      if (causal) w.ifElse(bin('>', rows, int(0)), tileBody);
      else tileBody();
    });
    const q3 = w.fresh('q');
    w.loop(q3, M, () => {
      const l = w.bind(load(SM, v(q3)), 'l');
      const inv = w.bind(sel(bin('>', l, f(0)), bin('/', f(1), l), f(0)), 'inv');
      const ob = w.bind(add(oOff, mul(v(q3), oRow)), 'ob');
      const c = w.fresh('c');
      w.loop(c, dv, () => w.emit({ k: 'store', buf: OUT, index: add(ob, v(c)), value: bin('*', load(OUT, add(ob, v(c))), inv) }));
    });
  };
  nest(0);
  return { packs: 0, scratch, prelude: w.body };
}
