/**
 * From a fused model to a program: the kernels (each with its per-element body rendered for the
 * CPU and for gpu.js from the same writer) and the straight-line schedule that runs them. The
 * CPU and GPU kernels differ only in their loop nest, which module.ts wraps around these bodies.
 */
import type { Graph, Node, Shape } from '../ir/graph.ts';
import type { ModelIR } from '../ir/model.ts';
import type { OpAttrs } from '../ir/ops.ts';
import { CPU, GPU, type Dialect } from './dialect.ts';
import { BodyWriter, dimExpr, flatIndex, num, type Reader } from './expr.ts';

/** Scalars every kernel receives: batch, steps, this step, and the slot of the previous state. */
export const SCALARS = ['B', 'T', 't', 'tp'] as const;

export interface KernelCode {
  readonly name: string;
  /** Buffer arguments in call order; a step kernel's first is the state history it updates. */
  readonly args: readonly string[];
  /** Output dims (for a step kernel: one slot, [B, S], of the history [B, T, S]). */
  readonly dims: readonly string[];
  readonly cpu: string;
  readonly gpu: string;
  readonly step: boolean;
  /**
   * A step whose state is two equal halves (an LSTM's [h; c]): the CPU body computes element j of
   * both halves at once and writes them itself (`dst[j]`, `dst[half + j]`), so gates
   * shared by h and c are computed once. gpu.js kernels have one output per thread and compute
   * each half's element separately.
   */
  readonly pairHalf?: number;
  /** Where it came from, for comments. */
  readonly label: string;
}

export type Instr =
  | { readonly op: 'run'; readonly kernel: string; readonly out: string; readonly args: readonly string[]; readonly size: string }
  | { readonly op: 'scan'; readonly out: string; readonly reverse: boolean; readonly size: string; readonly body: readonly Instr[]; readonly step: string; readonly args: readonly string[]; readonly label: string };

export interface Program {
  readonly kernels: KernelCode[];
  readonly instrs: Instr[];
  /** Buffer names of params, by weight name; of inputs and lengths, by input name. */
  readonly params: ReadonlyMap<string, string>;
  readonly output: string;
}

const buf = (id: number) => `n${id}`;

function sizeExpr(shape: Shape): string {
  return shape.map(dimExpr).join(' * ');
}

class ProgramBuilder {
  readonly kernels: KernelCode[] = [];
  readonly params = new Map<string, string>();
  constructor(readonly model: ModelIR) {}

  /** A buffer-reading Reader: materialized nodes are read by flat index, recording `args` as used. */
  private reader(materialized: Set<number>, args: string[], scan?: { hist: string; S: number }): Reader {
    const use = (name: string) => {
      if (!args.includes(name)) args.push(name);
      return name;
    };
    return (n: Node, idx: readonly string[]) => {
      if (!materialized.has(n.id)) return undefined;
      switch (n.op) {
        case 'param': {
          const name = (n.attrs as OpAttrs['param']).name;
          const b = this.params.get(name) ?? `w${this.params.size}`;
          this.params.set(name, b);
          return `${use(b)}[${flatIndex(n.shape, idx)}]`;
        }
        case 'state': {
          // The previous slot of the history. Before the first step the host passes tp = t: slot t
          // is still all zeros then (the history starts zeroed and a step kernel writes its slot
          // only after every element is computed), so no branch is needed in the dot-product loop.
          const h = use(scan!.hist);
          return `${h}[(${idx[0]} * T + tp) * ${scan!.S} + ${idx[1]}]`;
        }
        case 'step': {
          const x = use(buf(n.id));
          return `${x}[(${idx[0]} * T + t) * ${n.shape[1]} + ${idx[1]}]`;
        }
        default:
          return `${use(buf(n.id))}[${flatIndex(n.shape, idx)}]`;
      }
    };
  }

  private body(g: Graph, root: Node, dialect: Dialect, materialized: Set<number>, args: string[], scan?: { hist: string; S: number }): string {
    const read = this.reader(materialized, args, scan);
    // the root is materialized (it is this kernel's output) but computed here, not read back
    const w = new BodyWriter(g, dialect, (n, ix) => (n.id === root.id ? undefined : read(n, ix)));
    const idx = root.shape.map((_, i) => `i${i}`);
    w.emit(`return ${w.val(root.id, idx)};`);
    return w.lines.join('\n');
  }

  /** The CPU body of a two-halves step: both halves' element i1, written into the step's row `dst`. */
  private pairBody(g: Graph, root: Node, materialized: Set<number>, args: string[], scan: { hist: string; S: number }, half: number): string {
    const w = new BodyWriter(g, CPU, this.reader(materialized, args, scan));
    const idx = ['i0', 'i1'];
    const first = w.val(root.inputs[0], idx);
    const second = w.val(root.inputs[1], idx);
    w.emit(`dst[i1] = ${first};`);
    w.emit(`dst[${half} + i1] = ${second};`);
    return w.lines.join('\n');
  }

  /** Reductions and pooling: hand-written loop bodies, the same on every target. */
  private special(g: Graph, root: Node, args: string[]): { dims: string[]; code: string; extra?: { name: string; dims: string[]; code: string } } | undefined {
    if (root.op !== 'softmax' && root.op !== 'layernorm' && root.op !== 'pool') return undefined;
    const xin = g.get(root.inputs[0]);
    const x = buf(xin.id);
    args.push(x);
    const D = xin.shape[xin.shape.length - 1] as number;
    const rowDims = xin.shape.slice(0, -1).map(dimExpr);
    const rowIdx = rowDims.map((_, i) => `i${i}`);
    const row = flatIndex(xin.shape.slice(0, -1), rowIdx);
    const lastI = `i${rowDims.length}`;
    if (root.op === 'softmax' || root.op === 'layernorm') {
      const statsName = `${buf(root.id)}_stats`;
      const statsCode = root.op === 'softmax'
        ? [
            `const base = (${row}) * ${D};`,
            `let m = -3.0e38;`,
            `for (let k = 0; k < ${D}; k++) { m = Math.max(m, ${x}[base + k]); }`,
            `if (${lastI} < 0.5) { return m; }`,
            `let s = 0.0;`,
            `for (let k = 0; k < ${D}; k++) { s += Math.exp(${x}[base + k] - m); }`,
            `return s;`,
          ]
        : [
            `const base = (${row}) * ${D};`,
            `let mean = 0.0;`,
            `for (let k = 0; k < ${D}; k++) { mean += ${x}[base + k]; }`,
            `mean = mean / ${D}.0;`,
            `if (${lastI} < 0.5) { return mean; }`,
            `let v = 0.0;`,
            `for (let k = 0; k < ${D}; k++) { const d = ${x}[base + k] - mean; v += d * d; }`,
            `return 1.0 / Math.sqrt(v / ${D}.0 + ${num((root.attrs as OpAttrs['layernorm']).eps)});`,
          ];
      args.push(statsName);
      let apply: string[];
      if (root.op === 'softmax') {
        apply = [
          `const sb = (${row}) * 2;`,
          (root.attrs as OpAttrs['softmax']).log
            ? `return ${x}[(${row}) * ${D} + ${lastI}] - ${statsName}[sb] - Math.log(${statsName}[sb + 1]);`
            : `return Math.exp(${x}[(${row}) * ${D} + ${lastI}] - ${statsName}[sb]) / ${statsName}[sb + 1];`,
        ];
      } else {
        const gamma = this.paramBuf(g, root.inputs[1]);
        const beta = this.paramBuf(g, root.inputs[2]);
        args.push(gamma, beta);
        apply = [
          `const sb = (${row}) * 2;`,
          `return (${x}[(${row}) * ${D} + ${lastI}] - ${statsName}[sb]) * ${statsName}[sb + 1] * ${gamma}[${lastI}] + ${beta}[${lastI}];`,
        ];
      }
      return {
        dims: [...rowDims, String(D)],
        code: apply.map((l) => '  ' + l).join('\n'),
        extra: { name: statsName, dims: [...rowDims, '2'], code: statsCode.map((l) => '  ' + l).join('\n') },
      };
    }
    if (root.op === 'pool') {
      const { mode, split } = root.attrs as OpAttrs['pool'];
      const len = buf(g.get(root.inputs[1]).id);
      args.push(len);
      const at = (t: string) => `${x}[(i0 * T + ${t}) * ${D} + i1]`;
      const lines = [`const L = ${len}[i0];`];
      if (mode === 'last') {
        lines.push(split === undefined ? `return ${at('L - 1.0')};` : `if (i1 < ${split}) { return ${at('L - 1.0')}; }`, ...(split === undefined ? [] : [`return ${at('0.0')};`]));
      } else if (mode === 'first') lines.push(`return ${at('0.0')};`);
      else if (mode === 'mean') lines.push(`let s = 0.0;`, `for (let t2 = 0; t2 < T; t2++) { if (t2 < L) { s += ${at('t2')}; } }`, `return s / L;`);
      else lines.push(`let m = -3.0e38;`, `for (let t2 = 0; t2 < T; t2++) { if (t2 < L) { m = Math.max(m, ${at('t2')}); } }`, `return m;`);
      return { dims: ['B', String(D)], code: lines.map((l) => '  ' + l).join('\n') };
    }
    return undefined;
  }

  private paramBuf(g: Graph, id: number): string {
    const n = g.get(id);
    const name = (n.attrs as OpAttrs['param']).name;
    const b = this.params.get(name) ?? `w${this.params.size}`;
    this.params.set(name, b);
    return b;
  }

  /** Compiles graph `g`'s kernels into instructions. */
  graph(g: Graph, scan?: { hist: string; S: number; node: Node }): Instr[] {
    const instrs: Instr[] = [];
    const materialized = new Set<number>();
    for (const n of g.nodes.values()) if (['input', 'lengths', 'param', 'state', 'step'].includes(n.op)) materialized.add(n.id);
    for (const k of g.kernels!) materialized.add(k.root);
    for (const k of g.kernels!) {
      const root = g.get(k.root);
      const name = `k${root.id}`;
      const isStep = scan !== undefined && g.outputs[0].node === root.id;
      if (root.op === 'scan') {
        const a = root.attrs as OpAttrs['scan'];
        const hist = buf(root.id);
        const body = this.graph(a.body, { hist, S: a.stateSize, node: root });
        // the step node of the body reads the scan's first input
        const stepNode = a.body.ordered().find((n) => n.op === 'step');
        const rename = (s: string) => (stepNode && s === buf(stepNode.id) ? buf(root.inputs[0]) : s);
        const fix = (i: Instr): Instr => (i.op === 'run' ? { ...i, args: i.args.map(rename) } : i);
        const last = body[body.length - 1] as Extract<Instr, { op: 'run' }>;
        instrs.push({ op: 'scan', out: hist, reverse: a.reverse, size: sizeExpr(root.shape), body: body.slice(0, -1).map(fix), step: last.kernel, args: last.args.map(rename), label: root.label });
        continue;
      }
      const cargs: string[] = [];
      const gargs: string[] = [];
      if (isStep) {
        cargs.push(scan!.hist);
        gargs.push(scan!.hist);
      }
      const sp = this.special(g, root, cargs);
      if (sp) {
        if (sp.extra) {
          this.kernels.push({ name: `${name}_stats`, args: [cargs[0]], dims: sp.extra.dims, cpu: sp.extra.code, gpu: sp.extra.code, step: false, label: `${root.label} (row statistics)` });
          instrs.push({ op: 'run', kernel: `${name}_stats`, out: sp.extra.name, args: [cargs[0]], size: sp.extra.dims.join(' * ') });
        }
        this.kernels.push({ name, args: cargs, dims: sp.dims, cpu: sp.code, gpu: sp.code, step: false, label: root.label });
        instrs.push({ op: 'run', kernel: name, out: buf(root.id), args: cargs, size: sp.dims.join(' * ') });
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
      this.kernels.push({ name, args: cargs, dims, cpu, gpu, step: isStep, pairHalf: half, label: root.label });
      instrs.push({ op: 'run', kernel: name, out: buf(root.id), args: cargs, size: sizeExpr(root.shape) });
    }
    return instrs;
  }
}

/** A step kernel's root that concatenates two equal halves of the state: their width. */
function pairHalf(g: Graph, root: Node): number | undefined {
  if (root.op !== 'concat') return undefined;
  const [a, b] = root.inputs.map((i) => g.get(i).shape[1]);
  return a === b && typeof a === 'number' ? a : undefined;
}

export function compileProgram(model: ModelIR): Program {
  const pb = new ProgramBuilder(model);
  const instrs = pb.graph(model.graph);
  return { kernels: pb.kernels, instrs, params: pb.params, output: buf(model.graph.outputs[0].node) };
}
