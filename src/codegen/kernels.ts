/**
 * From a fused model to a program: the kernels (each with its per-element body rendered for the
 * CPU and for gpu.js from the same writer) and the plan (src/runtime/plan.ts) that the runtime
 * runs them by. The CPU and GPU kernels differ only in their loop nest, which module.ts wraps
 * around these bodies.
 */
import type { Graph, Node, Shape } from '../ir/graph.ts';
import type { ModelIR } from '../ir/model.ts';
import type { OpAttrs } from '../ir/ops.ts';
import type { GenPlan, Instr, Plan, RunInstr, Size } from '../runtime/plan.ts';
import { CPU, GPU, type Dialect } from './dialect.ts';
import { BodyWriter, dimExpr, flatIndex, num, type Reader } from './expr.ts';

/** The scalars a kernel may use: symbolic sizes, and inside a scan the step t and the previous state's slot tp. */
export const SCALARS = ['B', 'T', 'S', 'P', 'K', 'P0', 't', 'tp'] as const;

export interface KernelCode {
  readonly name: string;
  /** Buffer arguments in call order; a step kernel's first is the state history it updates, its last the lengths. */
  readonly args: readonly string[];
  /** Output dims (for a step kernel: one slot, [B, S], of the history [B, L, S]). */
  readonly dims: readonly string[];
  readonly cpu: string;
  readonly gpu: string;
  /** A step kernel's time dim ('T' or 'S'); undefined for other kernels. */
  readonly time?: string;
  /**
   * A step whose state is two equal halves (an LSTM's [h; c]): the CPU body computes element j of
   * both halves at once and writes them itself (`dst[j]`, `dst[half + j]`), so gates
   * shared by h and c are computed once. gpu.js kernels have one output per thread and compute
   * each half's element separately.
   */
  readonly pairHalf?: number;
  /** Where it came from, for comments. */
  readonly label: string;
  /** The same kernel with its matmuls as GEMM calls and the rest as an epilogue over their results (host backends). */
  readonly gemm?: GemmCode;
}

/**
 * A kernel whose matmuls run as GEMM calls (TVM's out-elementwise-fusable pattern): each matmul
 * `x · wᵀ (+ b)` whose weight is a block of a parameter becomes one call of the host's GEMM
 * (WebAssembly SIMD, or plain TypeScript) on a weight packed once at load, into a scratch buffer
 * (or straight into the output when the kernel is just that matmul); the rest of the kernel is an
 * epilogue: the same per-element body, reading those results instead of computing dot products.
 */
export interface GemmCode {
  /** Weight blocks the GEMMs read, packed once when weights load: buf is the param's buffer, [row, row + n) × [col, col + k) of a [?, ld] matrix. */
  readonly packs: readonly { readonly buf: string; readonly row: number; readonly n: number; readonly col: number; readonly k: number; readonly ld: number }[];
  /** Scratch buffer sizes (expressions in the scalars): `gm0`, `gm1`, … */
  readonly scratch: readonly string[];
  /** Statements run first: operand packing loops and the GEMM calls (`x.gemm(…)`). */
  readonly prelude: string;
  /** The per-element body over the GEMM results (CPU dialect); absent when the GEMM writes the output itself. */
  readonly epilogue?: string;
}

export interface Program {
  readonly kernels: KernelCode[];
  /** Per kernel root id: how the host backends run its matmuls (shown by --emit=ir-opt). */
  readonly gemmNotes: ReadonlyMap<number, readonly string[]>;
  readonly plan: Plan;
}

const buf = (id: number) => `n${id}`;

const size = (shape: Shape): Size => shape.map((d) => d);

interface ScanCtx {
  readonly node: Node;
  readonly S: number;
  /** The scan's time dim. */
  readonly L: string;
}

class ProgramBuilder {
  readonly kernels: KernelCode[] = [];
  readonly params = new Map<string, string>();
  readonly gemmNotes = new Map<number, string[]>();
  constructor(readonly model: ModelIR) {}

  private paramName(n: Node): string {
    const name = (n.attrs as OpAttrs['param']).name;
    const b = this.params.get(name) ?? `w${this.params.size}`;
    this.params.set(name, b);
    return b;
  }

  /** The buffer a materialized node is read from (a capture reads its outer value). */
  private bufOf(n: Node, scan?: ScanCtx): string {
    if (n.op === 'param') return this.paramName(n);
    if (n.op === 'capture') {
      const s = scan!.node;
      const first = 2 + ((s.attrs as OpAttrs['scan']).init ? 1 : 0);
      return buf(s.inputs[first + (n.attrs as OpAttrs['capture']).input]);
    }
    if (n.op === 'step') return buf(scan!.node.inputs[0]);
    // the previous state is slot tp of the scan's own history (the initial state is placed in the
    // first step's slot before the loop), so a step kernel reads no buffer beyond its output's
    if (n.op === 'state') return buf(scan!.node.id);
    return buf(n.id);
  }

  /** A buffer-reading Reader: materialized nodes are read by flat index, recording `args` as used. */
  private reader(materialized: Set<number>, args: string[], scan?: ScanCtx): Reader {
    return (n: Node, idx: readonly string[]) => {
      if (!materialized.has(n.id)) return undefined;
      const name = this.bufOf(n, scan);
      if (!args.includes(name)) args.push(name);
      switch (n.op) {
        case 'state':
          return `${name}[(${idx[0]} * ${scan!.L} + tp) * ${scan!.S} + ${idx[1]}]`;
        case 'step':
          return `${name}[(${idx[0]} * ${scan!.L} + t) * ${dimExpr(n.shape[1])} + ${idx[1]}]`;
        default:
          return `${name}[${flatIndex(n.shape, idx)}]`;
      }
    };
  }

  private body(g: Graph, root: Node, dialect: Dialect, materialized: Set<number>, args: string[], scan?: ScanCtx, over?: Reader): string {
    const base = this.reader(materialized, args, scan);
    // the root is materialized (it is this kernel's output) but computed here, not read back (unless a GEMM computed it)
    const w = new BodyWriter(g, dialect, (n, ix) => over?.(n, ix) ?? (n.id === root.id ? undefined : base(n, ix)));
    const idx = root.shape.map((_, i) => `i${i}`);
    w.emit(`return ${w.val(root.id, idx)};`);
    return w.lines.join('\n');
  }

  /** The CPU body of a two-halves step: both halves' element i1, written into the step's row `dst`. */
  private pairBody(g: Graph, root: Node, materialized: Set<number>, args: string[], scan: ScanCtx, half: number, over?: Reader): string {
    const base = this.reader(materialized, args, scan);
    const w = new BodyWriter(g, CPU, over ? (n, ix) => over(n, ix) ?? base(n, ix) : base);
    const idx = ['i0', 'i1'];
    const first = w.val(root.inputs[0], idx);
    const second = w.val(root.inputs[1], idx);
    w.emit(`dst[i1] = ${first};`);
    w.emit(`dst[${half} + i1] = ${second};`);
    return w.lines.join('\n');
  }

  /**
   * Row reductions (softmax, layernorm): a statistics kernel over each row ([rows…, 2]: max and sum of
   * exponentials, or mean and 1/std) and an apply kernel, both written with the shared body writer so
   * that a cheap elementwise producer of the row (a residual add) is computed inline in each rather
   * than read from a buffer (passes/fuse.ts decides which).
   */
  private rowReduce(g: Graph, root: Node, dialect: Dialect, materialized: Set<number>, scan?: ScanCtx): { stats: { code: string; args: string[] }; apply: { code: string; args: string[] }; host: string } {
    const xin = g.get(root.inputs[0]);
    const D = dimExpr(xin.shape[xin.shape.length - 1]);
    const rowDims = xin.shape.slice(0, -1).map(dimExpr);
    const rowIdx = rowDims.map((_, i) => `i${i}`);
    const row = flatIndex(xin.shape.slice(0, -1), rowIdx);
    const lastI = `i${rowDims.length}`;
    const statsName = `${buf(root.id)}_stats`;
    const isSoftmax = root.op === 'softmax';
    const masked = isSoftmax && root.inputs.length > 1 ? this.bufOf(g.get(root.inputs[1]), scan) : undefined;
    if (isSoftmax && masked && (root.attrs as OpAttrs['softmax']).log) throw new Error('internal: masked log_softmax');
    // masked: the first lengths[b] positions of the last axis only (causal: and not after the query,
    // the second-to-last index, over a key cache). Each loop has its own variable: gpu.js declares a
    // dynamically bounded loop's variable outside it.
    const causal = isSoftmax && (root.attrs as OpAttrs['softmax']).causal ? `i${rowDims.length - 1}` : undefined;
    const valid = (k: string) => (causal ? `(${k} < ${masked}[i0] || ${k} >= P0) && ${k} <= ${causal} + P` : `${k} < ${masked}[i0]`);
    const kernel = (body: (w: BodyWriter, x: (k: string) => string) => void) => {
      const args: string[] = [];
      const w = new BodyWriter(g, dialect, this.reader(materialized, args, scan));
      body(w, (k) => w.val(xin.id, [...rowIdx, k]));
      if (masked && !args.includes(masked)) args.push(masked);
      return { code: w.lines.join('\n'), args };
    };
    const loop = (w: BodyWriter, k: string, f: () => void) =>
      w.block(`for (let ${k} = 0; ${k} < ${D}; ${k}++)`, () => (masked ? w.block(`if (${valid(k)})`, f) : f()), k);
    const stats = kernel((w, x) => {
      if (isSoftmax) {
        w.emit('let m = -3.0e38;');
        loop(w, 'ka', () => w.emit(`m = Math.max(m, ${x('ka')});`));
        w.emit(`if (${lastI} < 0.5) { return m; }`);
        w.emit('let s = 0.0;');
        loop(w, 'kb', () => w.emit(`s += Math.exp(${x('kb')} - m);`));
        w.emit('return s;');
      } else {
        w.emit('let mean = 0.0;');
        loop(w, 'ka', () => w.emit(`mean += ${x('ka')};`));
        w.emit(`mean = mean / ${D}.0;`);
        w.emit(`if (${lastI} < 0.5) { return mean; }`);
        w.emit('let v = 0.0;');
        loop(w, 'kb', () => w.emit(`v += (${x('kb')} - mean) * (${x('kb')} - mean);`));
        w.emit(`return 1.0 / Math.sqrt(v / ${D}.0 + ${num((root.attrs as OpAttrs['layernorm']).eps)});`);
      }
    });
    const apply = kernel((w, x) => {
      if (masked) w.emit(`if (!(${valid(lastI)})) { return 0.0; }`);
      const sb = w.bind(`(${row}) * 2`, 'sb');
      if (isSoftmax) {
        w.emit((root.attrs as OpAttrs['softmax']).log
          ? `return ${x(lastI)} - ${statsName}[${sb}] - Math.log(${statsName}[${sb} + 1]);`
          : `return Math.exp(${x(lastI)} - ${statsName}[${sb}]) / ${statsName}[${sb} + 1];`);
      } else {
        const gamma = this.paramName(g.get(root.inputs[1]));
        const beta = this.paramName(g.get(root.inputs[2]));
        w.emit(`return (${x(lastI)} - ${statsName}[${sb}]) * ${statsName}[${sb} + 1] * ${gamma}[${lastI}] + ${beta}[${lastI}];`);
      }
    });
    const used = (code: string, name: string) => new RegExp(`\\b${name}\\b`).test(code);
    for (const extra of [statsName, ...(isSoftmax ? [] : [this.paramName(g.get(root.inputs[1])), this.paramName(g.get(root.inputs[2]))])]) {
      if (used(apply.code, extra) && !apply.args.includes(extra)) apply.args.push(extra);
    }
    return { stats, apply, host: dialect === CPU ? this.hostRows(g, root, materialized, apply.args, scan, valid) : '' };
  }

  /**
   * The host backends' form of a row reduction: one pass per row over its values (computed once
   * into the output, then normalised there), instead of a statistics kernel and an apply kernel
   * that each recompute the row and exp() it (the statistics kernel then does nothing).
   */
  private hostRows(g: Graph, root: Node, materialized: Set<number>, args: readonly string[], scan: ScanCtx | undefined, valid: (k: string) => string): string {
    const xin = g.get(root.inputs[0]);
    const D = dimExpr(xin.shape[xin.shape.length - 1]);
    const rowShape = xin.shape.slice(0, -1);
    const rowIdx = rowShape.map((_, i) => `i${i}`);
    const tmp: string[] = [];
    const idx = [...rowIdx, 'k'];
    let body: string;
    if (materialized.has(xin.id)) body = `  return ${this.reader(materialized, tmp, scan)(xin, idx)!};`;
    else {
      const w = new BodyWriter(g, CPU, this.reader(materialized, tmp, scan));
      w.emit(`return ${w.val(xin.id, idx)};`);
      body = w.lines.join('\n');
    }
    for (const a of tmp) if (!args.includes(a)) throw new Error(`internal: k${root.id}'s host form reads ${a}`);
    const masked = root.op === 'softmax' && root.inputs.length > 1;
    const ok = (k: string) => (masked ? valid(k) : 'true');
    const L: string[] = [];
    const param = (v: string) => (new RegExp(`\\b${v}\\b`).test(body) ? v : `_${v}`);
    L.push(`const fx = (${idx.map((v) => `${param(v)}: number`).join(', ')}): number => {`, ...body.split('\n').map((l) => '  ' + l.trim()), '};');
    rowIdx.forEach((v, i) => L.push(`${'  '.repeat(i)}for (let ${v} = 0; ${v} < ${dimExpr(rowShape[i])}; ${v}++) {`));
    const ind = '  '.repeat(rowIdx.length);
    const out: string[] = [`const base = (${flatIndex(rowShape, rowIdx)}) * ${D};`];
    if (root.op === 'softmax') {
      const log = (root.attrs as OpAttrs['softmax']).log;
      out.push(
        'let m = -3.0e38;',
        `for (let k = 0; k < ${D}; k++) { if (${ok('k')}) { const v = fx(${idx.join(', ')}); out[base + k] = v; m = Math.max(m, v); } else { out[base + k] = 0.0; } }`,
        'let s = 0.0;',
        log
          ? `for (let k = 0; k < ${D}; k++) { s += Math.exp(out[base + k]! - m); }`
          : `for (let k = 0; k < ${D}; k++) { if (${ok('k')}) { const e = Math.exp(out[base + k]! - m); out[base + k] = e; s += e; } }`,
        log
          ? `const ls = m + Math.log(s);\nfor (let k = 0; k < ${D}; k++) { out[base + k] = out[base + k]! - ls; }`
          : `for (let k = 0; k < ${D}; k++) { out[base + k] = out[base + k]! / s; }`,
      );
    } else {
      const gamma = this.paramName(g.get(root.inputs[1]));
      const beta = this.paramName(g.get(root.inputs[2]));
      if (!args.includes(gamma) || !args.includes(beta)) throw new Error(`internal: k${root.id}'s host form reads its scale and shift`);
      out.push(
        'let mean = 0.0;',
        `for (let k = 0; k < ${D}; k++) { const v = fx(${idx.join(', ')}); out[base + k] = v; mean += v; }`,
        `mean = mean / ${D}.0;`,
        'let v2 = 0.0;',
        `for (let k = 0; k < ${D}; k++) { const d = out[base + k]! - mean; v2 += d * d; }`,
        `const inv = 1.0 / Math.sqrt(v2 / ${D}.0 + ${num((root.attrs as OpAttrs['layernorm']).eps)});`,
        `for (let k = 0; k < ${D}; k++) { out[base + k] = (out[base + k]! - mean) * inv * ${gamma}[k]! + ${beta}[k]!; }`,
      );
    }
    L.push(...out.flatMap((l) => l.split('\n')).map((l) => ind + l));
    rowIdx.forEach((_, i) => L.push(`${'  '.repeat(rowIdx.length - 1 - i)}}`));
    return L.join('\n');
  }

  /** Pooling over time: a hand-written loop body, the same on every target. */
  private special(g: Graph, root: Node, args: string[], scan?: ScanCtx): { dims: string[]; code: string } | undefined {
    if (root.op !== 'pool') return undefined;
    const xin = g.get(root.inputs[0]);
    const x = this.bufOf(xin, scan);
    args.push(x);
    const D = dimExpr(xin.shape[xin.shape.length - 1]);
    // pool over the time axis (T, or S for a source) of [B, L, D]
    const { mode, split } = root.attrs as OpAttrs['pool'];
    const L = dimExpr(xin.shape[1]);
    const at = (t: string) => `${x}[(i0 * ${L} + ${t}) * ${D} + i1]`;
    const lines: string[] = [];
    if (mode !== 'first') {
      // the row's valid length (`first` needs none: step 0 is always valid)
      const len = this.bufOf(g.get(root.inputs[1]), scan);
      args.push(len);
      lines.push(`const L = ${len}[i0];`);
    }
    if (mode === 'last') {
      lines.push(split === undefined ? `return ${at('L - 1.0')};` : `if (i1 < ${split}) { return ${at('L - 1.0')}; }`, ...(split === undefined ? [] : [`return ${at('0.0')};`]));
    } else if (mode === 'first') lines.push(`return ${at('0.0')};`);
    else if (mode === 'mean') lines.push(`let s = 0.0;`, `for (let t2 = 0; t2 < ${L}; t2++) { if (t2 < L) { s += ${at('t2')}; } }`, `return s / L;`);
    else lines.push(`let m = -3.0e38;`, `for (let t2 = 0; t2 < ${L}; t2++) { if (t2 < L) { m = Math.max(m, ${at('t2')}); } }`, `return m;`);
    return { dims: ['B', D], code: lines.map((l) => '  ' + l).join('\n') };
  }

  /** Compiles graph `g`'s kernels into instructions (a scan body's last one is its step kernel). */
  graph(g: Graph, scan?: ScanCtx): Instr[] {
    const instrs: Instr[] = [];
    const materialized = new Set<number>();
    for (const n of g.nodes.values()) if (['input', 'lengths', 'param', 'state', 'step', 'capture', 'pos_offsets', 'key_lengths', 'cache', 'sin_freqs'].includes(n.op)) materialized.add(n.id);
    for (const k of g.kernels!) materialized.add(k.root);
    for (const k of g.kernels!) {
      const root = g.get(k.root);
      const name = `k${root.id}`;
      const isStep = scan !== undefined && g.outputs[0].node === root.id;
      if (root.op === 'scan') {
        instrs.push(this.scan(root));
        continue;
      }
      const cargs: string[] = [];
      const gargs: string[] = [];
      if (isStep) {
        cargs.push(buf(scan!.node.id));
        gargs.push(buf(scan!.node.id));
      }
      if (root.op === 'softmax' || root.op === 'layernorm') {
        const c = this.rowReduce(g, root, CPU, materialized, scan);
        const gp = this.rowReduce(g, root, GPU, materialized, scan);
        if (c.stats.args.join() !== gp.stats.args.join() || c.apply.args.join() !== gp.apply.args.join()) throw new Error(`internal: ${name}'s CPU and GPU bodies read different buffers`);
        const rowDims = root.shape.slice(0, -1).map(dimExpr);
        // host backends: the apply kernel does the whole row reduction and the statistics kernel nothing
        const none: GemmCode = { packs: [], scratch: [], prelude: '' };
        this.kernels.push({ name: `${name}_stats`, args: c.stats.args, dims: [...rowDims, '2'], cpu: c.stats.code, gpu: gp.stats.code, label: `${root.label} (row statistics)`, gemm: none });
        instrs.push({ op: 'run', kernel: `${name}_stats`, out: `${buf(root.id)}_stats`, args: c.stats.args, size: [...root.shape.slice(0, -1), 2] });
        this.kernels.push({ name, args: c.apply.args, dims: root.shape.map(dimExpr), cpu: c.apply.code, gpu: gp.apply.code, label: root.label, gemm: { packs: [], scratch: [], prelude: c.host } });
        this.gemmNotes.set(root.id, [`one pass per row (values, ${root.op === 'softmax' ? 'max, exp and sum' : 'mean and variance'}, normalised in place); no statistics kernel`]);
        instrs.push({ op: 'run', kernel: name, out: buf(root.id), args: c.apply.args, size: size(root.shape) });
        continue;
      }
      const sp = this.special(g, root, cargs, scan);
      if (sp) {
        this.kernels.push({ name, args: cargs, dims: sp.dims, cpu: sp.code, gpu: sp.code, label: root.label });
        instrs.push({ op: 'run', kernel: name, out: buf(root.id), args: cargs, size: size(root.shape) });
        continue;
      }
      const half = isStep ? pairHalf(g, root) : undefined;
      const cpu = half !== undefined ? this.pairBody(g, root, materialized, cargs, scan!, half) : this.body(g, root, CPU, materialized, cargs, scan);
      const gpu = this.body(g, root, GPU, materialized, gargs, scan);
      if (cargs.join() !== gargs.join()) throw new Error(`internal: ${name}'s CPU and GPU bodies read different buffers`);
      if (isStep) {
        // the step kernel zeroes padded steps, so it reads the lengths too (last argument)
        const len = buf(scan!.node.inputs[1]);
        cargs.push(len);
        gargs.push(len);
      }
      const dims = root.shape.map(dimExpr);
      const gemm = this.gemmForm(g, k.members, root, materialized, cargs, isStep, half, scan);
      this.kernels.push({ name, args: cargs, dims, cpu, gpu, time: isStep ? scan!.L : undefined, pairHalf: half, label: root.label, ...(gemm ? { gemm } : {}) });
      instrs.push({ op: 'run', kernel: name, out: buf(root.id), args: cargs, size: size(root.shape) });
    }
    return instrs;
  }

  /**
   * The kernel's GEMM form (GemmCode), when it has a matmul whose weight (and bias) is a block of
   * a parameter. Its data operand is read in place when it is a buffer (or a column block of one,
   * or the previous state's slot of the history, or this step's slot of the input); otherwise it is
   * first computed into a scratch buffer by a per-element loop.
   */
  private gemmForm(g: Graph, members: readonly number[], root: Node, materialized: Set<number>, args: readonly string[], isStep: boolean, half: number | undefined, scan?: ScanCtx): GemmCode | undefined {
    const packs: { buf: string; row: number; n: number; col: number; k: number; ld: number }[] = [];
    const scratch: string[] = [];
    const prelude: string[] = [];
    const results = new Map<number, string>();
    const notes: string[] = [];
    const arg = (name: string) => {
      if (!args.includes(name)) throw new Error(`internal: GEMM operand ${name} is not an argument of k${root.id}`);
      return name;
    };
    // what the GEMMs (and vectorised activations) computed is read from their scratch buffers
    const over: Reader = (m, ix) => (results.has(m.id) ? `${results.get(m.id)}[${flatIndex(m.shape, ix)}]` : undefined);
    // a loop over `shape` writing element o of each name from the value of its node there
    const fill = (shape: Shape, targets: readonly (readonly [string, number])[]): string => {
      const tmp: string[] = [];
      const base = this.reader(materialized, tmp, scan);
      const w = new BodyWriter(g, CPU, (m, ix) => over(m, ix) ?? base(m, ix));
      const idx = shape.map((_, i) => `i${i}`);
      for (const [name, id] of targets) w.emit(`${name}[o] = ${w.val(id, idx)};`);
      tmp.forEach(arg);
      const loops = idx.map((v, i) => `${'  '.repeat(i + 1)}for (let ${v} = 0; ${v} < ${dimExpr(shape[i])}; ${v}++)`).join('\n');
      const inner = w.lines.map((l) => '  '.repeat(idx.length) + l).join('\n');
      return `{\n  let o = 0;\n${loops} {\n${inner}\n${'  '.repeat(idx.length + 1)}o++;\n${'  '.repeat(idx.length)}}\n}`;
    };
    for (const id of members) {
      const n = g.get(id);
      if (n.op === 'einsum') {
        const e = this.einsumGemm(g, n, materialized, scan, scratch, isStep || n.id !== root.id);
        if (e) {
          e.args.forEach(arg);
          prelude.push(e.code);
          results.set(n.id, e.out);
          notes.push(`%${n.id} batched GEMM, one per ${e.batch || 'call'}: %${n.inputs[1]} packed per call${e.out === 'out' ? ', into the output' : ''}`);
        }
        continue;
      }
      if (n.op !== 'matmul') continue;
      const w = weightBlock(g, g.get(n.inputs[1]));
      const hasBias = (n.attrs as OpAttrs['matmul']).bias;
      const bias = hasBias ? weightBlock(g, g.get(n.inputs[2])) : undefined;
      if (!w || (hasBias && (!bias || bias.col !== 0))) continue;
      const x = g.get(n.inputs[0]);
      const K = x.shape[x.shape.length - 1] as number;
      const N = n.shape[n.shape.length - 1] as number;
      const M = n.shape.slice(0, -1).map(dimExpr).join(' * ') || '1';
      let a = dataOperand(g, x, materialized, scan);
      let aName: string;
      const inPlace = a !== undefined;
      if (a) aName = arg(this.bufOf(a.node, scan));
      else {
        // not a buffer: compute it into scratch, element by element
        aName = `gm${scratch.length}`;
        scratch.push(`${M} * ${K}`);
        prelude.push(fill(x.shape, [[aName, x.id]]));
        a = { node: x, off: '0', lda: String(K) };
      }
      const direct = !isStep && n.id === root.id;
      const out = direct ? 'out' : `gm${scratch.length}`;
      if (!direct) scratch.push(`${M} * ${N}`);
      const wb = arg(this.paramName(w.param));
      const pi = packs.findIndex((p) => p.buf === wb && p.row === w.row && p.col === w.col && p.n === N && p.k === K);
      const pack = pi >= 0 ? pi : packs.push({ buf: wb, row: w.row, n: N, col: w.col, k: K, ld: w.ld }) - 1;
      const biasArg = bias ? arg(this.paramName(bias.param)) : 'null';
      prelude.push(`x.gemm(${M}, ${N}, ${K}, ${aName}, ${a.off}, ${a.lda}, x.packs[${pack}], ${biasArg}, ${bias ? bias.row : 0}, ${out}, 0, ${N}, 0);`);
      results.set(n.id, out);
      const wn = (w.param.attrs as OpAttrs['param']).name;
      const block = w.row || w.col || N !== w.param.shape[0] || K !== w.ld ? `[${w.row}:${w.row + N}, ${w.col}:${w.col + K}]` : '';
      notes.push(`%${n.id} GEMM ${M.replace(/ \* /g, "·")} × ${N} × ${K} on ${wn}${block} packed at load${bias ? ' (+ bias)' : ''}, data ${inPlace ? `%${a.node.id} read in place` : `%${x.id} computed into scratch first`}${out === 'out' ? ', into the output' : ''}`);
    }
    if (!results.size) return undefined;
    const epi = results.get(root.id) !== 'out';
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
        const n = g.get(id);
        if (level.has(id)) return level.get(id)! + 1;
        return Math.max(0, ...n.inputs.map((i) => dependsOn(i, seen)));
      };
      const cands = members.map((id) => g.get(id)).filter((u) => isAct(u) && u.id !== root.id && !results.has(u.id));
      for (const u of cands) level.set(u.id, dependsOn(u.inputs[0]));
      const groups = new Map<string, { level: number; us: Node[] }>();
      for (const u of cands) {
        const key = `${level.get(u.id)}|${u.shape.join(',')}`;
        if (!groups.has(key)) groups.set(key, { level: level.get(u.id)!, us: [] });
        groups.get(key)!.us.push(u);
      }
      for (const { us } of [...groups.values()].sort((x, y) => x.level - y.level)) {
        const count = us[0]!.shape.map(dimExpr).join(' * ') || '1';
        const names = us.map(() => `gm${scratch.push(count) - 1}`);
        prelude.push(fill(us[0]!.shape, us.map((u, j) => [names[j]!, u.inputs[0]] as const)));
        us.forEach((u, j) => {
          prelude.push(`x.act(${(u.attrs as OpAttrs['unary']).fn === 'tanh' ? 0 : 1}, ${names[j]}, 0, ${count});`);
          results.set(u.id, names[j]!);
          acts.push(`%${u.id}`);
        });
      }
    }
    this.gemmNotes.set(root.id, [
      ...notes,
      ...(acts.length ? [`activations ${acts.join(' ')} over whole arrays (vectorised), their inputs computed first`] : []),
      ...(epi ? [`epilogue: the rest of the kernel per element, reading the GEMM results`] : []),
    ]);
    const tmp: string[] = [];
    let epilogue: string | undefined;
    if (epi) {
      epilogue = half !== undefined ? this.pairBody(g, root, materialized, tmp, scan!, half, over) : this.body(g, root, CPU, materialized, tmp, scan, over);
      tmp.forEach(arg);
    }
    return { packs, scratch, prelude: prelude.join('\n'), ...(epilogue !== undefined ? { epilogue } : {}) };
  }

  /**
   * A two-operand einsum that is a batched matmul (attention's q·kᵀ and α·v): batch letters in both
   * operands and the output, one row letter m (first operand), one column letter n (second operand,
   * the output's last), one summed letter k (contiguous in the first operand). Per batch element the
   * second operand is packed into scratch (times the einsum's scale) and one GEMM writes the output block. Operands must be
   * views of buffers (head splits, slices, the state's slot).
   */
  private einsumGemm(g: Graph, n: Node, materialized: Set<number>, scan: ScanCtx | undefined, scratch: string[], toScratch: boolean): { code: string; args: string[]; out: string; batch: string } | undefined {
    const { spec, scale } = n.attrs as OpAttrs['einsum'];
    const [lhs, outL] = spec.split('->');
    const ops = lhs.split(',');
    if (ops.length !== 2) return undefined;
    const [la, lb] = ops;
    const letters = new Set([...la, ...lb]);
    const batch = [...outL].filter((c) => la.includes(c) && lb.includes(c));
    const ms = [...outL].filter((c) => la.includes(c) && !lb.includes(c));
    const ns = [...outL].filter((c) => lb.includes(c) && !la.includes(c));
    const ks = [...letters].filter((c) => !outL.includes(c));
    if (ms.length > 1 || ns.length !== 1 || ks.length !== 1 || !la.includes(ks[0]) || !lb.includes(ks[0])) return undefined;
    if (outL[outL.length - 1] !== ns[0] || batch.length + ms.length + 1 !== outL.length) return undefined;
    const A = viewStrides(g, g.get(n.inputs[0]), materialized, scan);
    const Bv = viewStrides(g, g.get(n.inputs[1]), materialized, scan);
    if (!A || !Bv) return undefined;
    const sA = (c: string) => A.strides[la.indexOf(c)];
    const sB = (c: string) => Bv.strides[lb.indexOf(c)];
    const k = ks[0];
    if (sA(k) !== '1') return undefined;
    const size = (c: string) => dimExpr(la.includes(c) ? g.get(n.inputs[0]).shape[la.indexOf(c)] : g.get(n.inputs[1]).shape[lb.indexOf(c)]);
    const outStrides = n.shape.map((_, i) => n.shape.slice(i + 1).map(dimExpr).join(' * ') || '1');
    const sC = (c: string) => outStrides[outL.indexOf(c)];
    const M = ms.length ? size(ms[0]) : '1';
    const N = size(ns[0]);
    const K = size(k);
    const out = toScratch ? `gm${scratch.length}` : 'out';
    if (toScratch) scratch.push(n.shape.map(dimExpr).join(' * '));
    const packed = `gm${scratch.length}`;
    scratch.push(`(${N} + 15) * ${K}`);
    const aName = this.bufOf(A.base, scan);
    const bName = this.bufOf(Bv.base, scan);
    const off = (base: string, s: (c: string) => string | undefined) => [base, ...batch.map((c, i) => `bt${i} * ${s(c) ?? '0'}`)].filter((t) => t !== '0').join(' + ') || '0';
    const lines: string[] = [];
    batch.forEach((c, i) => lines.push(`${'  '.repeat(i)}for (let bt${i} = 0; bt${i} < ${size(c)}; bt${i}++) {`));
    const ind = '  '.repeat(batch.length);
    // the einsum's scale (attention's 1/√d) is applied to the packed operand
    lines.push(`${ind}const wp = x.pack(${bName}, ${off(Bv.off, sB)}, ${N}, ${K}, ${sB(ns[0])}, ${sB(k)}, ${packed}, ${num(scale)});`);
    lines.push(`${ind}x.gemm(${M}, ${N}, ${K}, ${aName}, ${off(A.off, sA)}, ${ms.length ? sA(ms[0]) : '0'}, wp, null, 0, ${out}, ${off('0', sC)}, ${ms.length ? sC(ms[0]) : '0'}, 0);`);
    batch.forEach((_, i) => lines.push(`${'  '.repeat(batch.length - 1 - i)}}`));
    if (!batch.length) lines.splice(0, lines.length, '{', ...lines.map((l) => '  ' + l), '}');
    return { code: lines.join('\n'), args: [aName, bName], out, batch: batch.join(', ') };
  }

  private scan(root: Node): Instr {
    const a = root.attrs as OpAttrs['scan'];
    const ctx: ScanCtx = { node: root, S: a.stateSize, L: dimExpr(root.shape[1]) };
    const body = this.graph(a.body, ctx) as RunInstr[];
    const last = body[body.length - 1];
    const exports: Record<string, string> = {};
    for (const o of a.body.outputs.slice(1)) exports[o.name] = buf(o.node);
    return {
      op: 'scan', out: buf(root.id), dim: ctx.L, reverse: a.reverse, stateSize: a.stateSize,
      init: a.init ? buf(root.inputs[2]) : undefined, lengths: buf(root.inputs[1]),
      body: body.slice(0, -1), step: last.kernel, args: last.args, size: size(root.shape),
      exports: Object.keys(exports).length ? exports : undefined, label: root.label,
    };
  }
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
    cur = g.get(cur.inputs[0]);
  }
  if (cur.op !== 'param') return undefined;
  return { param: cur, row, col, ld: cur.shape.length > 1 ? cur.shape[1] as number : 1 };
}

/**
 * A matmul's data operand read in place: a buffer of rows (or a column block of one), the previous
 * state's slot of a scan's history, or this step's slot of its input. Rows are `lda` apart from `off`.
 */
function dataOperand(g: Graph, x: Node, materialized: Set<number>, scan?: ScanCtx): { node: Node; off: string; lda: string } | undefined {
  // merged heads of a buffer [.., N, H] are its rows of N·H
  if (x.op === 'merge_heads' && !materialized.has(x.id)) {
    const h = g.get(x.inputs[0]);
    if (materialized.has(h.id) && h.op !== 'state' && h.op !== 'step') return { node: h, off: '0', lda: dimExpr(x.shape[x.shape.length - 1]) };
  }
  let col = 0;
  let cur = x;
  while (cur.op === 'slice' && !materialized.has(cur.id) && typeof (cur.attrs as OpAttrs['slice']).count === 'number') {
    col += (cur.attrs as OpAttrs['slice']).start;
    cur = g.get(cur.inputs[0]);
  }
  if (!materialized.has(cur.id)) return undefined;
  const width = dimExpr(cur.shape[cur.shape.length - 1]);
  const plus = (e: string) => (col ? `${e} + ${col}` : e);
  if (cur.op === 'state') return { node: cur, off: plus(`tp * ${scan!.S}`), lda: `${scan!.L} * ${scan!.S}` };
  if (cur.op === 'step') return { node: cur, off: plus(`t * ${width}`), lda: `${scan!.L} * ${width}` };
  if (cur.op === 'input' || cur.op === 'lengths' || cur.op === 'param') return cur.op === 'input' && (cur.attrs as OpAttrs['input']).form === 'vectors' ? { node: cur, off: String(col), lda: width } : undefined;
  return { node: cur, off: String(col), lda: width };
}

/**
 * Where a view of a buffer reads: the buffer's node, the offset of element 0 and each axis's
 * stride (expressions). Buffers, the state's and the step's slot, last-axis slices, head splits and
 * inserted axes; anything else is not a strided view.
 */
function viewStrides(g: Graph, x: Node, materialized: Set<number>, scan?: ScanCtx): { base: Node; off: string; strides: string[] } | undefined {
  if (materialized.has(x.id)) {
    if (x.op === 'state') return { base: x, off: `tp * ${scan!.S}`, strides: [`${scan!.L} * ${scan!.S}`, '1'] };
    const w = dimExpr(x.shape[x.shape.length - 1]);
    if (x.op === 'step') return { base: x, off: `t * ${w}`, strides: [`${scan!.L} * ${w}`, '1'] };
    if (x.op === 'lengths' || x.op === 'param' || (x.op === 'input' && (x.attrs as OpAttrs['input']).form !== 'vectors')) return undefined;
    return { base: x, off: '0', strides: x.shape.map((_, i) => x.shape.slice(i + 1).map(dimExpr).join(' * ') || '1') };
  }
  const inner = () => viewStrides(g, g.get(x.inputs[0]), materialized, scan);
  switch (x.op) {
    case 'slice': {
      const v = inner();
      const { start } = x.attrs as OpAttrs['slice'];
      if (!v) return undefined;
      const last = v.strides[v.strides.length - 1];
      return { ...v, off: start === 0 ? v.off : `${v.off} + ${start} * ${last}` };
    }
    case 'split_heads': {
      const v = inner();
      if (!v) return undefined;
      const last = v.strides[v.strides.length - 1];
      const h = dimExpr(x.shape[x.shape.length - 1]);
      return { ...v, strides: [...v.strides.slice(0, -1), last === '1' ? h : `${h} * ${last}`, last] };
    }
    case 'unsqueeze': {
      const v = inner();
      if (!v) return undefined;
      const { axis } = x.attrs as OpAttrs['unsqueeze'];
      return { ...v, strides: [...v.strides.slice(0, axis), '0', ...v.strides.slice(axis)] };
    }
    default:
      return undefined;
  }
}

/** A step kernel's root that concatenates two equal halves of the state: their width. */
function pairHalf(g: Graph, root: Node): number | undefined {
  if (root.op !== 'concat') return undefined;
  const [a, b] = root.inputs.map((i) => g.get(i).shape[1]);
  return a === b && typeof a === 'number' ? a : undefined;
}

/** Buffers an instruction reads. */
function reads(i: Instr): string[] {
  if (i.op === 'run') return [...i.args];
  return [...i.args, i.lengths, ...(i.init ? [i.init] : []), ...i.body.flatMap((b) => b.args)];
}

export function compileProgram(model: ModelIR): Program {
  const pb = new ProgramBuilder(model);
  const g = model.graph;
  const instrs = pb.graph(g);
  const inputs = model.inputs.map((inp) => {
    const data = g.ordered().find((n) => n.op === 'input' && (n.attrs as OpAttrs['input']).name === inp.name);
    const len = g.ordered().find((n) => n.op === 'lengths' && (n.attrs as OpAttrs['lengths']).input === inp.name);
    const perRow = (op: string) => g.ordered().find((n) => n.op === op && (n.attrs as OpAttrs['key_lengths']).input === inp.name);
    const offsets = perRow('pos_offsets');
    const keyLengths = perRow('key_lengths');
    return {
      name: inp.name, data: data ? buf(data.id) : `unused_${inp.name}`, lengths: len ? buf(len.id) : `unused_${inp.name}_lengths`, dim: data ? String(data.shape[1]) : 'T',
      ...(offsets ? { offsets: buf(offsets.id) } : {}), ...(keyLengths ? { keyLengths: buf(keyLengths.id) } : {}),
    };
  });
  const caches = g.ordered().filter((n) => n.op === 'time_concat').map((n) => ({ cache: buf(n.inputs[0]), next: buf(n.id), width: n.shape[2] as number }));
  const tables = g.ordered().filter((n) => n.op === 'sin_freqs').map((n) => ({ buf: buf(n.id), kind: 'sin_freqs' as const, dim: (n.attrs as OpAttrs['sin_freqs']).dim }));
  // instructions that depend on the last input (the target, or the only input) form the decoder part
  const genInput = inputs.length - 1;
  const gi = inputs[genInput];
  const tainted = new Set([gi.data, gi.lengths, ...(gi.offsets ? [gi.offsets] : []), ...(gi.keyLengths ? [gi.keyLengths] : []), ...caches.map((c) => c.cache)]);
  const encode: Instr[] = [];
  const decode: Instr[] = [];
  for (const i of instrs) {
    if (reads(i).some((r) => tainted.has(r))) {
      decode.push(i);
      tainted.add(i.out);
    } else encode.push(i);
  }
  const outNode = g.get(g.outputs[0].node);
  const output = { buf: buf(outNode.id), shape: size(outNode.shape) };
  const { gen, noGen } = genPlan(model, inputs.length > 1, encode, decode, genInput);
  const plan: Plan = {
    inputs,
    params: [...pb.params.entries()],
    encode: inputs.length > 1 ? encode : [],
    decode: inputs.length > 1 ? decode : [...encode, ...decode],
    output,
    caches,
    ...(tables.length ? { tables } : {}),
    ...(gen ? { gen } : { noGen }),
  };
  return { kernels: pb.kernels, plan, gemmNotes: pb.gemmNotes };
}

/** Whether (and how) generate() can drive this model one token at a time. */
function genPlan(model: ModelIR, seq2seq: boolean, encode: Instr[], decode: Instr[], genInput: number): { gen?: GenPlan; noGen?: string } {
  const g = model.graph;
  const inp = model.inputs[genInput];
  if (inp.form !== 'tokens') return { noGen: `its input '${inp.name}' is feature vectors, not tokens to feed back` };
  if (!model.output.seq) return { noGen: `its output '${model.output.name}' has no time axis (pool or flatten): there is no next-token distribution per step` };
  const out = g.get(g.outputs[0].node);
  const vocab = out.shape[out.shape.length - 1];
  if (out.shape.length !== 3 || typeof vocab !== 'number') return { noGen: `its output is not one distribution per step` };
  if (model.readsAhead) return { noGen: `'${model.readsAhead}' attends to later tokens (self-attention without causal)` };
  const decodeScans = decode.filter((i): i is Extract<Instr, { op: 'scan' }> => i.op === 'scan');
  const rev = decodeScans.find((s) => s.reverse);
  if (rev) return { noGen: `'${rev.label}' runs backwards over the sequence (bidirectional): each token would depend on later ones` };
  // what the decoder reads from the encoder part (and the source input)
  const produced = new Map<string, Size>();
  const shapeOf = (id: number): Size => size(g.get(id).shape);
  for (const n of g.nodes.values()) produced.set(buf(n.id), shapeOf(n.id));
  const encodeOut = new Set(encode.map((i) => i.out));
  if (seq2seq) {
    const src = g.ordered().filter((n) => (n.op === 'input' || n.op === 'lengths') && n.attrs && (n.op === 'input' ? (n.attrs as OpAttrs['input']).name : (n.attrs as OpAttrs['lengths']).input) === model.inputs[0].name);
    for (const n of src) encodeOut.add(buf(n.id));
  }
  const captures: { buf: string; shape: Size }[] = [];
  for (const i of decode) for (const r of reads(i)) if (encodeOut.has(r) && !captures.some((c) => c.buf === r)) captures.push({ buf: r, shape: produced.get(r)! });
  // the distribution: what the output is before the final padding mask
  const pre = out.op === 'mask' ? g.get(out.inputs[0]) : out;
  const readout = pre.op === 'softmax' ? ((pre.attrs as OpAttrs['softmax']).log ? 'logprob' : 'prob') : 'logits';
  const attention = findAttention(g, decode);
  // a learned positional table (gather of a weight by positions) covers only its rows
  const tables = g.ordered().filter((n) => n.op === 'gather' && g.get(n.inputs[1]).op === 'positions').map((n) => g.get(n.inputs[0]).shape[0] as number);
  return {
    gen: {
      ...(tables.length ? { maxPositions: Math.min(...tables) } : {}),
      input: genInput, seq2seq, captures,
      carries: decodeScans.map((s) => ({ scan: s.out, stateSize: s.stateSize })),
      ...(attention ? { attention } : {}),
      readout, vocab,
    },
  };
}

/**
 * The last attention layer's weights in the decoder part: a graph output named 'attention' (after
 * the recurrence, Luong) or a scan body's output of that name (inside it, Bahdanau).
 */
function findAttention(g: Graph, decode: Instr[]): GenPlan['attention'] {
  const outer = new Set(g.outputs.filter((o) => o.name === 'attention').map((o) => buf(o.node)));
  let found: GenPlan['attention'];
  for (const i of decode) {
    if (i.op === 'scan' && i.exports?.attention) found = { scan: i.out, name: 'attention' };
    if (i.op === 'run' && outer.has(i.out)) found = { buf: i.out };
  }
  return found;
}
