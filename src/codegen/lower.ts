/**
 * From a fused graph (passes/fuse.ts) to kernel IR: each kernel of each graph becomes a Kernel
 * (src/codegen/kir.ts) over numbered buffer parameters, and a call of it names which buffers fill
 * those parameters. Element and step kernels are written by the shared body writer (expr.ts), row
 * reductions and pooling by reduce.ts, host GEMM forms by gemm.ts. The plan builder (plan.ts) then
 * turns the calls into the runtime's Plan: slots, kernel table, liveness.
 *
 * Buffers are named here by BufKey — `n12` (node 12's value), `w:NAME` (a weight), `n12.stats`
 * (a row reduction's statistics) — and only here; the plan numbers them.
 */
import type { FusedKernel, Graph, Node } from '../ir/graph.ts';
import type { OpAttrs } from '../ir/ops.ts';
import type { Size, TimeDim } from '../runtime/plan.ts';
import { ARG, OUT, ROW, add, bin, f, flatIndex, int, load, mul, product, scalar, v, type Buf, type Expr, type HostForm, type Kernel, type Stmt } from './kir.ts';
import { BodyWriter, dimExpr, dimsOf, type Reader } from './expr.ts';
import { hostForm, type PackRef } from './gemm.ts';
import { attentionKernel, poolKernel, rowReduction } from './reduce.ts';

export type BufKey = string;

export const nodeBuf = (id: number): BufKey => `n${id}`;
export const weightBuf = (name: string): BufKey => `w:${name}`;

/** One kernel call: the kernel, the buffers for its parameters, its output. */
export interface Call {
  readonly kernel: Kernel;
  readonly args: readonly BufKey[];
  readonly out: BufKey;
  readonly size: Size;
  /** The weight blocks its host form's GEMMs read (packed once at load). */
  readonly packs: readonly PackRef[];
  readonly label: string;
  /** The IR node it computes (the plan splits calls into the encoder and decoder parts by node). */
  readonly root: number;
  /** It feeds only reported attention weights: run only when they are asked for. */
  readonly weightsOnly?: true;
}

export type LoweredInstr =
  | { readonly op: 'run'; readonly call: Call }
  | {
    readonly op: 'scan'; readonly out: BufKey; readonly dim: TimeDim; readonly reverse: boolean; readonly stateSize: number;
    readonly init?: BufKey; readonly lengths: BufKey; readonly body: readonly Call[]; readonly step: Call; readonly size: Size;
    readonly exports: Readonly<Record<string, BufKey>>; readonly label: string; readonly root: number;
    /** Body outputs kept at every step (training graphs' `stacked` nodes): each step's [B, width] → slot t of `to` [B, L, width], 0 at padded steps. */
    readonly stacks: readonly { readonly from: BufKey; readonly to: BufKey; readonly width: Size }[];
  };

export interface ScanCtx {
  readonly node: Node;
  readonly S: number;
  /** The scan's time dim. */
  readonly L: Expr;
}

/** Nodes whose buffers come from elsewhere: the run's inputs, weights, a scan's own buffers, and a training graph's feeds (saved values, cotangents, dropout masks) and stacked body outputs (filled by their scan). */
const SOURCES = new Set(['input', 'lengths', 'param', 'state', 'step', 'capture', 'pos_offsets', 'key_lengths', 'cache', 'sin_freqs', 'stacked', 'saved', 'cotangent', 'dropout_mask']);

/**
 * What one kernel is being written against: its graph, which nodes have buffers, the scan it
 * sits in, and its parameter table (buffers numbered in the order the kernel first reads them, so
 * that two kernels computing the same thing on different buffers get the same numbering).
 */
export class KernelCtx {
  readonly keys: BufKey[] = [];
  readonly types: ('f32' | 'i32')[] = [];
  constructor(readonly g: Graph, readonly materialized: ReadonlySet<number>, readonly scan?: ScanCtx) {}

  /** The parameter reading buffer `key`. */
  argKey(key: BufKey, dtype: 'f32' | 'i32'): Buf {
    let i = this.keys.indexOf(key);
    if (i < 0) {
      i = this.keys.push(key) - 1;
      this.types.push(dtype);
    }
    return ARG(i);
  }

  /** The buffer a materialized node is read from (a capture reads its outer value, a state the scan's history). */
  bufKey(n: Node): BufKey {
    if (n.op === 'param') return weightBuf((n.attrs as OpAttrs['param']).name);
    if (n.op === 'capture') {
      const s = this.scan!.node;
      const first = 2 + ((s.attrs as OpAttrs['scan']).init ? 1 : 0);
      return nodeBuf(s.inputs[first + (n.attrs as OpAttrs['capture']).input]!);
    }
    if (n.op === 'step') return nodeBuf(this.scan!.node.inputs[0]!);
    // the previous state is slot tp of the scan's own history (the initial state is placed in the
    // first step's slot before the loop), so a step kernel reads no buffer beyond its output's
    if (n.op === 'state') return nodeBuf(this.scan!.node.id);
    return nodeBuf(n.id);
  }

  arg(n: Node): Buf {
    return this.argKey(this.bufKey(n), n.dtype);
  }

  /** Reads materialized nodes from their buffers (`except` is computed, not read: the kernel's own root). */
  reader(except?: number): Reader {
    return (n, idx) => {
      if (!this.materialized.has(n.id) || n.id === except) return undefined;
      const b = this.arg(n);
      const scan = this.scan;
      switch (n.op) {
        case 'state':
          return load(b, add(mul(add(mul(idx[0]!, scan!.L), scalar('tp')), int(scan!.S)), idx[1]!));
        case 'step':
          return load(b, add(mul(add(mul(idx[0]!, scan!.L), scalar('t')), dimExpr(n.shape[1])), idx[1]!));
        default:
          return load(b, flatIndex(dimsOf(n.shape), idx));
      }
    };
  }

  /** A writer reading through `over` first (a host form's GEMM results), then the buffers. */
  writer(except?: number, over?: Reader): BodyWriter {
    const base = this.reader(except);
    return new BodyWriter(this.g, over ? (n, ix) => over(n, ix) ?? base(n, ix) : base);
  }

  /** The per-element body of `root`: its value at (i0, i1, …), returned. */
  element(root: Node, over?: Reader): Stmt[] {
    const w = this.writer(root.id, over);
    w.emit({ k: 'return', value: w.val(root.id, root.shape.map((_, i) => v(`i${i}`))) });
    return w.body;
  }

  /** The CPU body of a two-halves step: both halves' element i1 of row i0, written into the row buffer. */
  pair(root: Node, half: number, over?: Reader): Stmt[] {
    const w = this.writer(undefined, over);
    const idx = [v('i0'), v('i1')];
    const first = w.val(root.inputs[0]!, idx);
    const second = w.val(root.inputs[1]!, idx);
    w.emit({ k: 'store', buf: ROW, index: v('i1'), value: first });
    w.emit({ k: 'store', buf: ROW, index: add(int(half), v('i1')), value: second });
    return w.body;
  }

  /** The CPU body of an n-parts kernel (kir.ts Kernel.parts): element i1 of every part of row i0, stored into the output. */
  parts(leaves: readonly number[], width: number): Stmt[] {
    const w = this.writer();
    const idx = [v('i0'), v('i1')];
    const row = mul(v('i0'), int(leaves.length * width));
    const vals = leaves.map((id) => w.val(id, idx));
    vals.forEach((value, q) => w.emit({ k: 'store', buf: OUT, index: add(row, add(int(q * width), v('i1'))), value }));
    return w.body;
  }

  call(kernel: Omit<Kernel, 'params'>, root: Node, out: BufKey, size: Size, label: string, packs: readonly PackRef[] = []): Call {
    return { kernel: { params: [...this.types], ...kernel }, args: [...this.keys], out, size, packs, label, root: root.id };
  }
}

/** Per kernel root id: how the host backends run it (shown by --emit=ir-opt as `host:` notes). */
export type HostNotes = Map<number, readonly string[]>;

/** Lowers graph `g`'s kernels into instructions (a scan body's last one is its step kernel). */
export function lowerGraph(g: Graph, notes: HostNotes, scan?: ScanCtx): LoweredInstr[] {
  const instrs: LoweredInstr[] = [];
  const materialized = new Set<number>();
  for (const n of g.nodes.values()) if (SOURCES.has(n.op)) materialized.add(n.id);
  for (const k of g.kernels!) materialized.add(k.root);
  for (const k of g.kernels!) {
    const from = instrs.length;
    lowerKernel(k);
    if (k.weightsOnly) for (let i = from; i < instrs.length; i++) {
      const ins = instrs[i]!;
      if (ins.op === 'run') instrs[i] = { op: 'run', call: { ...ins.call, weightsOnly: true } };
    }
  }
  return instrs;

  function lowerKernel(k: FusedKernel): void {
    const root = g.get(k.root);
    if (k.tiled !== undefined) {
      const a = attentionKernel(g, root, g.get(k.tiled), materialized, scan);
      instrs.push({ op: 'run', call: a.call });
      notes.set(root.id, [a.note]);
      return;
    }
    if (root.op === 'scan') {
      instrs.push(lowerScan(g, root, notes));
      return;
    }
    const out = nodeBuf(root.id);
    const size: Size = [...root.shape];
    if (root.op === 'softmax' || root.op === 'layernorm') {
      const r = rowReduction(g, root, materialized, scan);
      instrs.push({ op: 'run', call: r.stats }, { op: 'run', call: r.apply });
      notes.set(root.id, [`one pass per row (values, ${root.op === 'softmax' ? 'max, exp and sum' : 'mean and variance'}, normalised in place); no statistics kernel`]);
      return;
    }
    if (root.op === 'pool') {
      instrs.push({ op: 'run', call: poolKernel(g, root, materialized, scan) });
      return;
    }
    const ctx = new KernelCtx(g, materialized, scan);
    const isStep = scan !== undefined && g.outputs[0]!.node === root.id;
    // a step kernel's first parameter is the history it writes into, its last the lengths
    if (isStep) ctx.argKey(nodeBuf(scan!.node.id), 'f32');
    const body = ctx.element(root);
    const half = isStep ? pairHalf(g, root) : undefined;
    const pair = half !== undefined ? { half, body: ctx.pair(root, half) } : undefined;
    const host = root.op === 'scatter_add' ? scatterForm(ctx, root) : (!scan && sumForm(ctx, root)) || hostForm(ctx, k.members, root, isStep, half);
    if (host) notes.set(root.id, host.notes);
    if (isStep) ctx.argKey(nodeBuf(scan!.node.inputs[1]!), 'i32');
    const step = isStep ? { step: { time: scan!.L, width: scan!.S, ...(pair ? { pair } : {}) } } : {};
    // a scan body's concatenation of equal parts computes each element of every part at once (the CPU's loop)
    const leaves = !isStep && !host && scan ? equalParts(g, root, materialized) : undefined;
    const parts = leaves ? { parts: { n: leaves.parts.length, width: leaves.width, body: ctx.parts(leaves.parts, leaves.width) } } : {};
    const dims = isStep ? [scalar('B'), int(scan!.S)] : dimsOf(root.shape);
    instrs.push({ op: 'run', call: ctx.call({ dims, body, ...step, ...parts, ...(host ? { host: host.form } : {}) }, root, out, size, root.label, host?.packs) });
  }
}

function timeDim(scan: ScanCtx): TimeDim {
  const L = scan.node.shape[1];
  if (typeof L !== 'string' || !/^[TS](\/\d+)?$/.test(L)) throw new Error(`internal: scan ${scan.node.label} runs over a fixed length`);
  return L as TimeDim;
}

function lowerScan(g: Graph, root: Node, notes: HostNotes): LoweredInstr {
  const a = root.attrs as OpAttrs['scan'];
  const stackedBy = new Map<string, Node>();
  for (const n of g.nodes.values()) {
    if (n.op !== 'stacked' || n.inputs[0] !== root.id) continue;
    const name = (n.attrs as OpAttrs['stacked']).output;
    if (stackedBy.has(name)) throw new Error(`internal: scan ${root.label} stacks body output ${name} twice`);
    stackedBy.set(name, n);
  }
  const ctx: ScanCtx = { node: root, S: a.stateSize, L: dimExpr(root.shape[1]) };
  const body = lowerGraph(a.body, notes, ctx).map((i) => {
    if (i.op !== 'run') throw new Error(`internal: a scan inside scan ${root.label}'s body`);
    return i.call;
  });
  // the step kernel (the body's first output) runs last; other body outputs (a backward scan's) may sort after it
  const stepOut = nodeBuf(a.body.outputs[0]!.node);
  const step = body.find((c) => c.out === stepOut);
  if (!step) throw new Error(`internal: scan ${root.label}'s body has no step kernel`);
  if (body.some((c) => c !== step && c.args.includes(stepOut))) throw new Error(`internal: scan ${root.label}'s body reads its next state before the step writes it`);
  const exports: Record<string, BufKey> = {};
  const stacks: { from: BufKey; to: BufKey; width: Size }[] = [];
  const computed = new Set(a.body.kernels!.map((k) => k.root));
  for (const o of a.body.outputs.slice(1)) {
    const st = stackedBy.get(o.name);
    if (!st) {
      exports[o.name] = nodeBuf(o.node);
      continue;
    }
    if (!computed.has(o.node)) throw new Error(`internal: scan ${root.label} keeps body output ${o.name}, which no body kernel computes`);
    stacks.push({ from: nodeBuf(o.node), to: nodeBuf(st.id), width: st.shape.slice(2) });
  }
  return {
    op: 'scan', out: nodeBuf(root.id), dim: timeDim(ctx), reverse: a.reverse, stateSize: a.stateSize,
    ...(a.init ? { init: nodeBuf(root.inputs[2]!) } : {}), lengths: nodeBuf(root.inputs[1]!),
    body: body.filter((c) => c !== step), step, size: [...root.shape], exports, stacks, label: root.label, root: root.id,
  };
}

/**
 * A scan body kernel's root [B, n · width] that concatenates (a tree of concats of) n ≥ 2 computed
 * parts of one width: the parts, in order.
 */
function equalParts(g: Graph, root: Node, materialized: ReadonlySet<number>): { parts: number[]; width: number } | undefined {
  if (root.op !== 'concat' || root.shape.length !== 2) return undefined;
  const parts: number[] = [];
  const walk = (n: Node): void => {
    if (n.op === 'concat' && (n.id === root.id || !materialized.has(n.id))) n.inputs.forEach((i) => walk(g.get(i)));
    else parts.push(n.id);
  };
  walk(root);
  const width = g.get(parts[0]!).shape[1];
  if (typeof width !== 'number' || parts.some((p) => g.get(p).shape[1] !== width)) return undefined;
  return { parts, width };
}

/**
 * scatter_add's host form (an embedding's gradient): the output zeroed, then each row of values
 * added into the row its id names — one pass over the values, where the element body sums over
 * every id for each output element.
 */
function scatterForm(ctx: KernelCtx, root: Node): { form: HostForm; packs: PackRef[]; notes: string[] } {
  const g = ctx.g;
  const ids = g.get(root.inputs[0]!);
  const width = dimExpr(root.shape[1]);
  const w = ctx.writer(root.id);
  w.loop('z', mul(dimExpr(root.shape[0]), width), () => w.emit({ k: 'store', buf: OUT, index: v('z'), value: f(0) }));
  const loops = ids.shape.map((_, d) => `s${d}`);
  const nest = (d: number): void => {
    if (d < loops.length) return w.loop(loops[d]!, dimExpr(ids.shape[d]), () => nest(d + 1));
    const at = loops.map((l) => v(l));
    const row = w.bind(mul(w.val(ids.id, at), width), 'row');
    w.loop('j', width, () => {
      const o = add(row, v('j'));
      w.emit({ k: 'store', buf: OUT, index: o, value: bin('+', load(OUT, o), w.val(root.inputs[1]!, [...at, v('j')])) });
    });
  };
  nest(0);
  return { form: { packs: 0, scratch: [], prelude: w.body }, packs: [], notes: ['zeroed, then each row of values added into the row its id names (one pass)'] };
}

/**
 * A one-operand einsum over a buffer that sums its leading axes (a bias gradient, Σ over B·T): the
 * output zeroed, then the buffer's rows added to it in memory order — one pass, where the element
 * body strides down a column for each output element.
 */
function sumForm(ctx: KernelCtx, root: Node): { form: HostForm; packs: PackRef[]; notes: string[] } | undefined {
  if (root.op !== 'einsum' || root.inputs.length !== 1) return undefined;
  const [lhs, out] = (root.attrs as OpAttrs['einsum']).spec.split('->') as [string, string];
  const x = ctx.g.get(root.inputs[0]!);
  if (!out.length || !lhs.endsWith(out) || lhs.length === out.length || !ctx.materialized.has(x.id) || x.op === 'state' || x.op === 'step') return undefined;
  const W = product(dimsOf(root.shape));
  const R = product(dimsOf(x.shape.slice(0, lhs.length - out.length)));
  const src = ctx.arg(x);
  const prelude: Stmt[] = [
    { k: 'for', v: 'z', n: W, body: [{ k: 'store', buf: OUT, index: v('z'), value: f(0) }] },
    { k: 'for', v: 'r', n: R, body: [{ k: 'for', v: 'j', n: W, body: [{ k: 'store', buf: OUT, index: v('j'), value: bin('+', load(OUT, v('j')), load(src, add(mul(v('r'), W), v('j')))) }] }] },
  ];
  return { form: { packs: 0, scratch: [], prelude }, packs: [], notes: ['zeroed, then the rows of its operand added in memory order (one pass)'] };
}

/** A step kernel's root that concatenates two equal halves of the state: their width. */
function pairHalf(g: Graph, root: Node): number | undefined {
  if (root.op !== 'concat') return undefined;
  const [a, b] = root.inputs.map((i) => g.get(i).shape[1]);
  return a === b && typeof a === 'number' ? a : undefined;
}
