/**
 * Host GEMM forms (kir.ts HostForm), TVM's out-elementwise-fusable pattern: every matmul
 * `x · wᵀ (+ b)` of a kernel whose weight is a block of a parameter becomes one call of the
 * host's GEMM (WebAssembly SIMD, or plain TypeScript) on that block packed once at load, into a
 * scratch buffer (or straight into the output when the kernel is just that matmul); attention's
 * batched products (a two-operand einsum over strided views) become one GEMM per batch element with
 * the second operand packed per call; the epilogue's tanh and sigmoid are applied to whole arrays;
 * the rest of the kernel is the epilogue: the same per-element body, reading those results.
 */
import type { Graph, Node, Shape } from '../ir/graph.ts';
import type { OpAttrs } from '../ir/ops.ts';
import {
  OUT, SCRATCH, add, flatIndex, int, mul, product, scalar, v,
  type Buf, type Expr, type HostForm, type Stmt,
} from './kir.ts';
import { dimExpr, dimsOf, type Reader } from './expr.ts';
import type { KernelCtx, ScanCtx } from './lower.ts';

/** A weight block a GEMM reads, packed once at load: rows [row, row + n) × columns [col, col + k) of a [?, ld] weight. */
export interface PackRef {
  readonly weight: string;
  readonly row: number;
  readonly n: number;
  readonly col: number;
  readonly k: number;
  readonly ld: number;
}

const isOne = (e: Expr) => e.k === 'i' && e.v === 1;

/** The kernel's host form, when it has a matmul whose weight (and bias) is a block of a parameter, or a batched product over views. */
export function hostForm(ctx: KernelCtx, members: readonly number[], root: Node, isStep: boolean, half: number | undefined): { form: HostForm; packs: PackRef[]; notes: string[] } | undefined {
  const g = ctx.g;
  const packs: PackRef[] = [];
  const scratch: Expr[] = [];
  const prelude: Stmt[] = [];
  const results = new Map<number, Buf>();
  const notes: string[] = [];
  const newScratch = (size: Expr): Buf => SCRATCH(scratch.push(size) - 1);
  // what the GEMMs (and vectorised activations) computed is read from their buffers
  const over: Reader = (m, ix) => {
    const b = results.get(m.id);
    return b ? { k: 'load', buf: b, index: flatIndex(dimsOf(m.shape), ix) } : undefined;
  };
  // a loop over `shape` writing element o of each target buffer from the value of its node there
  const fill = (shape: Shape, targets: readonly (readonly [Buf, number])[]): Stmt => {
    const w = ctx.writer(undefined, over);
    w.emit({ k: 'let', name: 'o', value: int(0) });
    const idx = shape.map((_, i) => v(`i${i}`));
    const nest = (d: number): void => {
      if (d < shape.length) return w.loop(`i${d}`, dimExpr(shape[d]), () => nest(d + 1));
      for (const [buf, id] of targets) w.emit({ k: 'store', buf, index: v('o'), value: w.val(id, idx) });
      w.emit({ k: 'set', name: 'o', add: true, value: int(1) });
    };
    nest(0);
    return { k: 'block', body: w.body };
  };
  for (const id of members) {
    const n = g.get(id);
    if (n.op === 'einsum') {
      const e = einsumGemm(ctx, n, newScratch, isStep || n.id !== root.id);
      if (e) {
        prelude.push(e.stmt);
        results.set(n.id, e.out);
        notes.push(`%${n.id} batched GEMM, one per ${e.batch || 'call'}: %${n.inputs[1]} packed per call${e.out.k === 'out' ? ', into the output' : ''}`);
      }
      continue;
    }
    if (n.op !== 'matmul') continue;
    const w = weightBlock(g, g.get(n.inputs[1]!));
    const hasBias = (n.attrs as OpAttrs['matmul']).bias;
    const bias = hasBias ? weightBlock(g, g.get(n.inputs[2]!)) : undefined;
    if (!w || (hasBias && (!bias || bias.col !== 0))) continue;
    const x = g.get(n.inputs[0]!);
    const K = x.shape[x.shape.length - 1] as number;
    const N = n.shape[n.shape.length - 1] as number;
    const M = product(dimsOf(n.shape.slice(0, -1)));
    let a = dataOperand(g, x, ctx.materialized, ctx.scan);
    let aBuf: Buf;
    const inPlace = a !== undefined;
    if (a) aBuf = ctx.arg(a.node);
    else {
      // not a buffer: compute it into scratch, element by element
      aBuf = newScratch(mul(M, int(K)));
      prelude.push(fill(x.shape, [[aBuf, x.id]]));
      a = { node: x, off: int(0), lda: int(K) };
    }
    const direct = !isStep && n.id === root.id;
    const out = direct ? OUT : newScratch(mul(M, int(N)));
    const wn = (w.param.attrs as OpAttrs['param']).name;
    const known = packs.findIndex((p) => p.weight === wn && p.row === w.row && p.col === w.col && p.n === N && p.k === K);
    const pack = known >= 0 ? known : packs.push({ weight: wn, row: w.row, n: N, col: w.col, k: K, ld: w.ld }) - 1;
    prelude.push({
      k: 'gemm', M, N: int(N), K: int(K), a: aBuf, aOff: a.off, lda: a.lda, w: { pack },
      ...(bias ? { bias: { buf: ctx.arg(bias.param), off: int(bias.row) } } : {}),
      c: out, cOff: int(0), ldc: int(N),
    });
    results.set(n.id, out);
    const block = w.row || w.col || N !== w.param.shape[0] || K !== w.ld ? `[${w.row}:${w.row + N}, ${w.col}:${w.col + K}]` : '';
    notes.push(`%${n.id} GEMM ${n.shape.slice(0, -1).join('·') || '1'} × ${N} × ${K} on ${wn}${block} packed at load${bias ? ' (+ bias)' : ''}, data ${inPlace ? `%${a.node.id} read in place` : `%${x.id} computed into scratch first`}${direct ? ', into the output' : ''}`);
  }
  if (!results.size) return undefined;
  const epi = results.get(root.id)?.k !== 'out';
  // the epilogue's tanh and sigmoid: their inputs computed over their whole shape into scratch,
  // then each activation applied to its array at once (the host's vectorised x.act). Activations
  // that do not depend on one another and have one shape share one loop (an LSTM's four gates),
  // then those that read them (tanh(c')).
  const acts: string[] = [];
  if (epi) {
    const isAct = (u: Node) => u.op === 'unary' && ((u.attrs as OpAttrs['unary']).fn === 'tanh' || (u.attrs as OpAttrs['unary']).fn === 'sigmoid');
    const memberSet = new Set(members);
    const level = new Map<number, number>();
    // the level of an activation: 1 + the highest level of the activations its input computes inline
    const dependsOn = (id: number, seen = new Set<number>()): number => {
      if (seen.has(id) || !memberSet.has(id) || results.has(id)) return 0;
      seen.add(id);
      if (level.has(id)) return level.get(id)! + 1;
      return Math.max(0, ...g.get(id).inputs.map((i) => dependsOn(i, seen)));
    };
    const cands = members.map((id) => g.get(id)).filter((u) => isAct(u) && u.id !== root.id && !results.has(u.id));
    for (const u of cands) level.set(u.id, dependsOn(u.inputs[0]!));
    const groups = new Map<string, { level: number; us: Node[] }>();
    for (const u of cands) {
      const key = `${level.get(u.id)}|${u.shape.join(',')}`;
      if (!groups.has(key)) groups.set(key, { level: level.get(u.id)!, us: [] });
      groups.get(key)!.us.push(u);
    }
    for (const { us } of [...groups.values()].sort((x, y) => x.level - y.level)) {
      const count = product(dimsOf(us[0]!.shape));
      const bufs = us.map(() => newScratch(count));
      prelude.push(fill(us[0]!.shape, us.map((u, j) => [bufs[j]!, u.inputs[0]!] as const)));
      us.forEach((u, j) => {
        prelude.push({ k: 'act', fn: (u.attrs as OpAttrs['unary']).fn as 'tanh' | 'sigmoid', buf: bufs[j]!, n: count });
        results.set(u.id, bufs[j]!);
        acts.push(`%${u.id}`);
      });
    }
  }
  notes.push(
    ...(acts.length ? [`activations ${acts.join(' ')} over whole arrays (vectorised), their inputs computed first`] : []),
    ...(epi ? [`epilogue: the rest of the kernel per element, reading the GEMM results`] : []),
  );
  const epilogue = epi ? (half !== undefined ? ctx.pair(root, half, over) : ctx.element(root, over)) : undefined;
  return { form: { packs: packs.length, scratch, prelude, ...(epilogue ? { epilogue } : {}) }, packs, notes };
}

/**
 * A two-operand einsum that is a batched matmul (attention's q·kᵀ and α·v): batch letters in both
 * operands and the output, one row letter m (first operand), one column letter n (second operand,
 * the output's last), one summed letter k (contiguous in the first operand). Per batch element the
 * second operand is packed into scratch (times the einsum's scale) and one GEMM writes the output
 * block. Operands must be views of buffers (head splits, slices, the state's slot).
 */
function einsumGemm(ctx: KernelCtx, n: Node, newScratch: (size: Expr) => Buf, toScratch: boolean): { stmt: Stmt; out: Buf; batch: string } | undefined {
  const g = ctx.g;
  const { spec, scale } = n.attrs as OpAttrs['einsum'];
  const [lhs, outL] = spec.split('->') as [string, string];
  const ops = lhs.split(',');
  if (ops.length !== 2) return undefined;
  const [la, lb] = ops as [string, string];
  const letters = new Set([...la, ...lb]);
  const batch = [...outL].filter((c) => la.includes(c) && lb.includes(c));
  const ms = [...outL].filter((c) => la.includes(c) && !lb.includes(c));
  const ns = [...outL].filter((c) => lb.includes(c) && !la.includes(c));
  const ks = [...letters].filter((c) => !outL.includes(c));
  if (ms.length > 1 || ns.length !== 1 || ks.length !== 1 || !la.includes(ks[0]!) || !lb.includes(ks[0]!)) return undefined;
  if (outL[outL.length - 1] !== ns[0] || batch.length + ms.length + 1 !== outL.length) return undefined;
  const A = viewStrides(g, g.get(n.inputs[0]!), ctx.materialized, ctx.scan);
  const Bv = viewStrides(g, g.get(n.inputs[1]!), ctx.materialized, ctx.scan);
  if (!A || !Bv) return undefined;
  const sA = (c: string) => A.strides[la.indexOf(c)]!;
  const sB = (c: string) => Bv.strides[lb.indexOf(c)]!;
  const k = ks[0]!;
  if (!isOne(sA(k))) return undefined;
  const size = (c: string) => dimExpr(la.includes(c) ? g.get(n.inputs[0]!).shape[la.indexOf(c)] : g.get(n.inputs[1]!).shape[lb.indexOf(c)]);
  const outDims = dimsOf(n.shape);
  const sC = (c: string) => product(outDims.slice(outL.indexOf(c) + 1));
  const M = ms.length ? size(ms[0]!) : int(1);
  const N = size(ns[0]!);
  const K = size(k);
  const out = toScratch ? newScratch(product(outDims)) : OUT;
  const packed = newScratch(mul(add(N, int(15)), K));
  const aBuf = ctx.arg(A.base);
  const bBuf = ctx.arg(Bv.base);
  const off = (base: Expr, s: (c: string) => Expr) => batch.reduce((e, c, i) => add(e, mul(v(`bt${i}`), s(c))), base);
  // the einsum's scale (attention's 1/√d) is applied to the packed operand
  const body: Stmt[] = [
    { k: 'pack', name: 'wp', src: bBuf, off: off(Bv.off, sB), N, K, sn: sB(ns[0]!), sk: sB(k), dst: packed, scale },
    { k: 'gemm', M, N, K, a: aBuf, aOff: off(A.off, sA), lda: ms.length ? sA(ms[0]!) : int(0), w: { local: 'wp' }, c: out, cOff: off(int(0), sC), ldc: ms.length ? sC(ms[0]!) : int(0) },
  ];
  let stmt: Stmt = { k: 'block', body };
  for (let i = batch.length - 1; i >= 0; i--) stmt = { k: 'for', v: `bt${i}`, n: size(batch[i]!), body: i === batch.length - 1 ? body : [stmt] };
  return { stmt, out, batch: batch.join(', ') };
}

/** A matmul weight (or bias) that is a block of a parameter: which rows and columns of it. */
function weightBlock(g: Graph, n: Node): { param: Node; row: number; col: number; ld: number } | undefined {
  let row = 0;
  let col = 0;
  let cur = n;
  for (;;) {
    if (cur.op === 'rows') row += (cur.attrs as OpAttrs['rows']).start;
    else if (cur.op === 'cols') col += (cur.attrs as OpAttrs['cols']).start;
    else break;
    cur = g.get(cur.inputs[0]!);
  }
  if (cur.op !== 'param') return undefined;
  return { param: cur, row, col, ld: cur.shape.length > 1 ? (cur.shape[1] as number) : 1 };
}

/**
 * A matmul's data operand read in place: a buffer of rows (or a column block of one), the previous
 * state's slot of a scan's history, or this step's slot of its input. Rows are `lda` apart from `off`.
 */
function dataOperand(g: Graph, x: Node, materialized: ReadonlySet<number>, scan?: ScanCtx): { node: Node; off: Expr; lda: Expr } | undefined {
  // merged heads of a buffer [.., N, H] are its rows of N·H
  if (x.op === 'merge_heads' && !materialized.has(x.id)) {
    const h = g.get(x.inputs[0]!);
    if (materialized.has(h.id) && h.op !== 'state' && h.op !== 'step') return { node: h, off: int(0), lda: dimExpr(x.shape[x.shape.length - 1]) };
  }
  let col = 0;
  let cur = x;
  while (cur.op === 'slice' && !materialized.has(cur.id) && typeof (cur.attrs as OpAttrs['slice']).count === 'number') {
    col += (cur.attrs as OpAttrs['slice']).start;
    cur = g.get(cur.inputs[0]!);
  }
  if (!materialized.has(cur.id)) return undefined;
  const width = dimExpr(cur.shape[cur.shape.length - 1]);
  if (cur.op === 'state') return { node: cur, off: add(mul(scalar('tp'), int(scan!.S)), int(col)), lda: mul(scan!.L, int(scan!.S)) };
  if (cur.op === 'step') return { node: cur, off: add(mul(scalar('t'), width), int(col)), lda: mul(scan!.L, width) };
  if (cur.op === 'input' || cur.op === 'lengths' || cur.op === 'param') return cur.op === 'input' && (cur.attrs as OpAttrs['input']).form === 'vectors' ? { node: cur, off: int(col), lda: width } : undefined;
  return { node: cur, off: int(col), lda: width };
}

/**
 * Where a view of a buffer reads: the buffer's node, the offset of element 0 and each axis's
 * stride. Buffers, the state's and the step's slot, last-axis slices, head splits and inserted
 * axes; anything else is not a strided view.
 */
export function viewStrides(g: Graph, x: Node, materialized: ReadonlySet<number>, scan?: ScanCtx): { base: Node; off: Expr; strides: Expr[] } | undefined {
  if (materialized.has(x.id)) {
    if (x.op === 'state') return { base: x, off: mul(scalar('tp'), int(scan!.S)), strides: [mul(scan!.L, int(scan!.S)), int(1)] };
    const w = dimExpr(x.shape[x.shape.length - 1]);
    if (x.op === 'step') return { base: x, off: mul(scalar('t'), w), strides: [mul(scan!.L, w), int(1)] };
    if (x.op === 'lengths' || x.op === 'param' || (x.op === 'input' && (x.attrs as OpAttrs['input']).form !== 'vectors')) return undefined;
    const dims = dimsOf(x.shape);
    return { base: x, off: int(0), strides: dims.map((_, i) => product(dims.slice(i + 1))) };
  }
  const inner = () => viewStrides(g, g.get(x.inputs[0]!), materialized, scan);
  switch (x.op) {
    case 'slice': {
      const vw = inner();
      if (!vw) return undefined;
      const last = vw.strides[vw.strides.length - 1]!;
      return { ...vw, off: add(vw.off, mul(int((x.attrs as OpAttrs['slice']).start), last)) };
    }
    case 'split_heads': {
      const vw = inner();
      if (!vw) return undefined;
      const last = vw.strides[vw.strides.length - 1]!;
      const h = dimExpr(x.shape[x.shape.length - 1]);
      return { ...vw, strides: [...vw.strides.slice(0, -1), mul(h, last), last] };
    }
    case 'unsqueeze': {
      const vw = inner();
      if (!vw) return undefined;
      const { axis } = x.attrs as OpAttrs['unsqueeze'];
      return { ...vw, strides: [...vw.strides.slice(0, axis), int(0), ...vw.strides.slice(axis)] };
    }
    default:
      return undefined;
  }
}

