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
  OUT, SCRATCH, add, flatIndex, int, load, mul, product, scalar, v,
  type Buf, type Expr, type GemmWeight, type HostForm, type Stmt,
} from './kir.ts';
import { dimExpr, dimsOf, type Reader } from './expr.ts';
import type { KernelCtx, ScanCtx } from './lower.ts';

/** A weight block a GEMM reads, packed once at load: B[n][k] = weight[off + n·sn + k·sk] (n < N, k < K). */
export interface PackRef {
  readonly weight: string;
  readonly off: number;
  readonly n: number;
  readonly k: number;
  readonly sn: number;
  readonly sk: number;
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
      const e = einsumGemm(ctx, n, newScratch, isStep || n.id !== root.id, packs, (x) => {
        // an operand that is not a view of a buffer (a concatenation of q, k and v gradients): computed into scratch first
        const buf = newScratch(product(dimsOf(x.shape)));
        prelude.push(fill(x.shape, [[buf, x.id]]));
        return buf;
      });
      if (e) {
        prelude.push(e.stmt);
        results.set(n.id, e.out);
        notes.push(`%${n.id} ${e.batch ? `batched GEMM, one per ${e.batch}` : 'GEMM'}${e.rows ? `, %${e.rows} copied as rows first` : ''}: %${e.packed} packed ${e.atLoad ? 'at load' : 'per call'}${e.out.k === 'out' ? ', into the output' : ''}`);
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
    const pack = packRef(packs, { weight: wn, off: w.row * w.ld + w.col, n: N, k: K, sn: w.ld, sk: 1 });
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
 * A two-operand einsum that is a (batched) matmul: attention's q·kᵀ and α·v, and reverse mode's
 * products over all steps — dX = dY·W (a weight operand) and the weight gradients dW = Σ_{b,t} dYᵀ·X
 * (JAX's scan transpose: one GEMM over B·T, not one per step). Batch letters are in both operands
 * and the output, row letters m in the first operand only, one column letter n in the second only
 * (the output's last), summed letters k in both. Several row or summed letters are one when their
 * strides say they are adjacent axes of one buffer (B and T of [B, T, d]). Per batch element the
 * second operand is packed into scratch (times the einsum's scale) — a weight once at load
 * instead (W of dY·W, transposed) — and one GEMM writes the output block; where the summed axis is not contiguous in the first operand (a weight gradient's B·T),
 * that operand is first copied into scratch as rows. Operands are views of buffers (head splits,
 * slices, the state's slot, weights).
 */
function einsumGemm(ctx: KernelCtx, n: Node, newScratch: (size: Expr) => Buf, toScratch: boolean, packs: PackRef[], computed: (x: Node) => Buf): { stmt: Stmt; out: Buf; batch: string; packed: number; atLoad: boolean; rows?: number } | undefined {
  const g = ctx.g;
  const { spec, scale } = n.attrs as OpAttrs['einsum'];
  const [lhs, outL] = spec.split('->') as [string, string];
  const ops = lhs.split(',');
  if (ops.length !== 2) return undefined;
  // the output's last letter comes from the second operand (the packed one): swap them if not
  const swap = !ops[1]!.includes(outL[outL.length - 1]!);
  const [la, lb] = (swap ? [ops[1], ops[0]] : ops) as [string, string];
  const [na, nb] = (swap ? [n.inputs[1], n.inputs[0]] : n.inputs).map((i) => g.get(i!)) as [Node, Node];
  const letters = new Set([...la, ...lb]);
  const batch = [...outL].filter((c) => la.includes(c) && lb.includes(c));
  const ms = [...outL].filter((c) => la.includes(c) && !lb.includes(c));
  const ns = [...outL].filter((c) => lb.includes(c) && !la.includes(c));
  const ks = [...letters].filter((c) => !outL.includes(c));
  if (!ks.length || ns.length !== 1 || ks.some((c) => !la.includes(c) || !lb.includes(c))) return undefined;
  if (outL[outL.length - 1] !== ns[0] || batch.length + ms.length + 1 !== outL.length) return undefined;
  // operands are views of buffers, or (outside a scan body) computed into scratch
  const view = (x: Node): View | undefined => viewStrides(g, x, ctx.materialized, ctx.scan) ?? (ctx.scan ? undefined : { base: x, off: int(0), strides: rowMajor(x), compute: true });
  const A = view(na);
  const Bv = view(nb);
  if (!A || !Bv) return undefined;
  const sA = (c: string) => A.strides[la.indexOf(c)]!;
  const sB = (c: string) => Bv.strides[lb.indexOf(c)]!;
  const size = (c: string) => dimExpr(la.includes(c) ? na.shape[la.indexOf(c)] : nb.shape[lb.indexOf(c)]);
  const outDims = dimsOf(n.shape);
  const sC = (c: string) => product(outDims.slice(outL.indexOf(c) + 1));
  // row letters as one (their order in the output), summed letters as one (their order in the first operand)
  const kOrder = [...la].filter((c) => ks.includes(c));
  const m = merged(ms, size, [sA, sC]);
  const k = merged(kOrder, size, [sA, sB]);
  if (!m || !k) return undefined;
  const [M, lda0, ldc] = [m.size, m.strides[0]!, m.strides[1]!];
  const [K, sAk, sBk] = [k.size, k.strides[0]!, k.strides[1]!];
  const N = size(ns[0]!);
  const out = toScratch ? newScratch(product(outDims)) : OUT;
  const aBuf = A.compute ? computed(na) : ctx.arg(A.base);
  const off = (base: Expr, st: (c: string) => Expr) => batch.reduce((e, c, i) => add(e, mul(v(`bt${i}`), st(c))), base);
  const body: Stmt[] = [];
  // a weight (no batch letters, no scale) is packed once at load; any other operand per call, times
  // the einsum's scale (attention's 1/√d)
  const lit = [Bv.off, N, K, sB(ns[0]!), sBk].map((e) => (e.k === 'i' ? e.v : undefined));
  const atLoad = Bv.base.op === 'param' && !Bv.compute && !batch.length && scale === 1 && lit.every((x) => x !== undefined);
  let w: GemmWeight;
  if (atLoad) {
    const [o, nn, kk, sn, sk] = lit as number[];
    w = { pack: packRef(packs, { weight: (Bv.base.attrs as OpAttrs['param']).name, off: o!, n: nn!, k: kk!, sn: sn!, sk: sk! }) };
  } else {
    body.push({ k: 'pack', name: 'wp', src: Bv.compute ? computed(nb) : ctx.arg(Bv.base), off: off(Bv.off, sB), N, K, sn: sB(ns[0]!), sk: sBk, dst: newScratch(mul(add(N, int(15)), K)), scale });
    w = { local: 'wp' };
  }
  let a: { buf: Buf; off: Expr; lda: Expr } = { buf: aBuf, off: off(A.off, sA), lda: ms.length ? lda0 : int(0) };
  if (!isOne(sAk)) {
    // the summed axis is strided in the first operand: its rows copied into scratch first
    const rows = newScratch(mul(M, K));
    const src = add(a.off, add(mul(v('mi'), lda0), mul(v('ki'), sAk)));
    body.push({ k: 'for', v: 'mi', n: M, body: [{ k: 'for', v: 'ki', n: K, body: [{ k: 'store', buf: rows, index: add(mul(v('mi'), K), v('ki')), value: load(aBuf, src) }] }] });
    a = { buf: rows, off: int(0), lda: K };
  }
  body.push({ k: 'gemm', M, N, K, a: a.buf, aOff: a.off, lda: a.lda, w, c: out, cOff: off(int(0), sC), ldc: ms.length ? ldc : int(0) });
  let stmt: Stmt = { k: 'block', body };
  for (let i = batch.length - 1; i >= 0; i--) stmt = { k: 'for', v: `bt${i}`, n: size(batch[i]!), body: i === batch.length - 1 ? body : [stmt] };
  return { stmt, out, batch: batch.join(', '), packed: nb.id, atLoad, ...(a.buf !== aBuf ? { rows: na.id } : {}) };
}

/**
 * Letters (outer first) as one axis, where each one's stride in every view is the next one's
 * stride times its size: their product, and the innermost letter's strides. None: size 1.
 */
function merged(cs: readonly string[], size: (c: string) => Expr, views: readonly ((c: string) => Expr)[]): { size: Expr; strides: Expr[] } | undefined {
  if (!cs.length) return { size: int(1), strides: views.map(() => int(0)) };
  for (let i = 0; i + 1 < cs.length; i++) {
    if (!views.every((st) => samePoly(st(cs[i]!), mul(size(cs[i + 1]!), st(cs[i + 1]!))))) return undefined;
  }
  return { size: product(cs.map(size)), strides: views.map((st) => st(cs[cs.length - 1]!)) };
}

/** Whether two index expressions (sums and products of integers and sizes) are the same polynomial. */
function samePoly(a: Expr, b: Expr): boolean {
  const pa = poly(a);
  const pb = poly(b);
  if (!pa || !pb) return false;
  const keys = new Set([...pa.keys(), ...pb.keys()]);
  return [...keys].every((key) => (pa.get(key) ?? 0) === (pb.get(key) ?? 0));
}

/** An expression as monomial (sorted scalar names) → coefficient; undefined where it is not a polynomial of sizes. */
function poly(e: Expr): Map<string, number> | undefined {
  if (e.k === 'i') return new Map([['', e.v]]);
  if (e.k === 'scalar') return new Map([[e.name, 1]]);
  if (e.k !== 'bin' || (e.op !== '+' && e.op !== '-' && e.op !== '*')) return undefined;
  const a = poly(e.a);
  const b = poly(e.b);
  if (!a || !b) return undefined;
  const r = new Map<string, number>();
  const put = (key: string, c: number) => r.set(key, (r.get(key) ?? 0) + c);
  if (e.op === '*') {
    for (const [ka, ca] of a) for (const [kb, cb] of b) put([...ka.split('.'), ...kb.split('.')].filter(Boolean).sort().join('.'), ca * cb);
  } else {
    for (const [ka, ca] of a) put(ka, ca);
    for (const [kb, cb] of b) put(kb, e.op === '-' ? -cb : cb);
  }
  return r;
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

/** Where an operand is read: a view of a buffer (viewStrides), or (`compute`) its values computed into scratch first, row-major. */
interface View {
  readonly base: Node;
  readonly off: Expr;
  readonly strides: Expr[];
  readonly compute?: true;
}

/** A row-major buffer's strides. */
function rowMajor(x: Node): Expr[] {
  const dims = dimsOf(x.shape);
  return dims.map((_, i) => product(dims.slice(i + 1)));
}

/**
 * Where a view of a buffer reads: the buffer's node, the offset of element 0 and each axis's
 * stride. Buffers (weights included), the state's and the step's slot, last-axis slices, head
 * splits and inserted axes; anything else is not a strided view.
 */
export function viewStrides(g: Graph, x: Node, materialized: ReadonlySet<number>, scan?: ScanCtx): View | undefined {
  if (materialized.has(x.id)) {
    if (x.op === 'state') return { base: x, off: mul(scalar('tp'), int(scan!.S)), strides: [mul(scan!.L, int(scan!.S)), int(1)] };
    const w = dimExpr(x.shape[x.shape.length - 1]);
    if (x.op === 'step') return { base: x, off: mul(scalar('t'), w), strides: [mul(scan!.L, w), int(1)] };
    if (x.op === 'lengths' || (x.op === 'input' && (x.attrs as OpAttrs['input']).form !== 'vectors')) return undefined;
    return { base: x, off: int(0), strides: rowMajor(x) };
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


/** The index of block `p` in the kernel's pack list (added once). */
function packRef(packs: PackRef[], p: PackRef): number {
  const known = packs.findIndex((q) => q.weight === p.weight && q.off === p.off && q.n === p.n && q.k === p.k && q.sn === p.sn && q.sk === p.sk);
  return known >= 0 ? known : packs.push(p) - 1;
}
