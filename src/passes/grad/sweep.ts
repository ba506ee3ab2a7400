/**
 * The reverse sweep over one graph (a model's graph or a scan body): nodes in reverse topological
 * order, each node's cotangent the sum of what its consumers gave it, each op's rule (rules.ts)
 * giving cotangents to its inputs. Contributions are backward-graph nodes, except where the
 * caller defers them: inside a scan body, what a weight or a captured outer value receives at one
 * step is kept as an unevaluated contraction (`Deferred`) so that the scan's transpose can sum it
 * over all steps as one einsum outside the loop (scan.ts) instead of one small product per step.
 */
import type { Span } from '../../diagnostics/span.ts';
import type { Builder } from '../../ir/build.ts';
import type { Dim, Graph, Node, Shape } from '../../ir/graph.ts';
import type { OpAttrs, OpName } from '../../ir/ops.ts';
import { VJP, type Vjp } from './rules.ts';

/** One operand of a contraction: a backward-graph node and one einsum letter per axis. */
export interface Operand {
  readonly node: number;
  readonly letters: string;
}

/**
 * Σ over the letters not in `out` of the product of the operands, times `scale`: one letter of
 * `out` per axis of the receiving value; a letter of `out` that no operand has is an axis the sum
 * is repeated along (unsqueezed, and broadcast when the axis is longer than 1).
 */
export interface Contraction {
  readonly operands: readonly Operand[];
  readonly out: string;
  readonly scale: number;
}

export interface Deferred extends Contraction {
  /** The forward node (of the swept graph) receiving it. */
  readonly target: number;
}

export interface SweepHooks {
  /** The backward graph's node for a forward node's value. */
  primal(id: number): number;
  /** Whether a forward node's value depends on something with a gradient (a weight, a float input, a scan state). */
  active(id: number): boolean;
  /** Leaves whose contributions are deferred (weights and captures inside a scan body). */
  defers?(id: number): boolean;
  defer?(d: Deferred): void;
  /** A scan's transpose (scan.ts), given its history's cotangent. */
  scan?(n: Node<'scan'>, g: number): void;
}

/** What a rule sees: its forward node, its cotangent, primal values, and where contributions go. */
export interface VjpCtx<K extends keyof OpAttrs = keyof OpAttrs> {
  readonly b: Builder;
  readonly n: Node<K>;
  /** The cotangent of n's value. */
  readonly g: number;
  readonly span: Span;
  /** The primal value of input i / of n itself. */
  x(i: number): number;
  y(): number;
  /** The forward shape of input i. */
  shape(i: number): Shape;
  /** Whether input i takes a cotangent. */
  wants(i: number): boolean;
  /** Adds `value` (input i's shape) to input i's cotangent. */
  give(i: number, value: number): void;
  /** Adds a contraction (reduced to input i's shape) to input i's cotangent. */
  giveSum(i: number, c: Contraction): void;
  /** Fresh einsum letters, distinct from any a rule uses literally (uppercase). */
  fresh(): string;
  label(what: string): string;
}

export class Sweep {
  private readonly cot = new Map<number, number[]>();
  private freshCount = 0;

  constructor(
    readonly fwd: Graph,
    readonly b: Builder,
    private readonly hooks: SweepHooks,
  ) {}

  seed(id: number, value: number): void {
    if (!this.hooks.active(id)) return;
    const list = this.cot.get(id) ?? [];
    list.push(value);
    this.cot.set(id, list);
  }

  /** The summed cotangent of a forward node (undefined when nothing reached it). */
  total(id: number): number | undefined {
    const list = this.cot.get(id);
    if (!list?.length) return undefined;
    if (list.length > 1) {
      const n = this.fwd.get(id);
      const sum = tiled(this.b, list, n.span, `d(${n.label})`) ?? list.reduce((a, v) => this.b.binary('add', a, v, n.span, `d(${n.label})`));
      list.splice(0, list.length, sum);
    }
    return list[0];
  }

  run(): void {
    for (const n of this.fwd.ordered().reverse()) {
      if (!this.hooks.active(n.id) || this.hooks.defers?.(n.id)) continue;
      const rule = VJP[n.op] as Vjp<OpName>;
      if (rule.kind === 'leaf' || rule.kind === 'none') continue;
      const g = this.total(n.id);
      if (g === undefined) continue;
      if (rule.kind === 'unsupported') throw new Error(`internal: reverse mode reached %${n.id} = ${n.op} (${n.label}): ${rule.why}`);
      if (rule.kind === 'scan') {
        if (!this.hooks.scan) throw new Error(`internal: a scan inside a scan body (%${n.id})`);
        this.hooks.scan(n as Node<'scan'>, g);
        continue;
      }
      rule.vjp(this.ctx(n, g));
    }
  }

  private ctx(n: Node, g: number): VjpCtx {
    const { b, hooks, fwd } = this;
    return {
      b,
      n,
      g,
      span: n.span,
      x: (i) => hooks.primal(n.inputs[i]),
      y: () => hooks.primal(n.id),
      shape: (i) => fwd.get(n.inputs[i]).shape,
      wants: (i) => hooks.active(n.inputs[i]),
      give: (i, value) => {
        const t = n.inputs[i];
        if (!hooks.active(t)) return;
        if (hooks.defers?.(t)) {
          const letters = identityLetters(b.shape(value).length);
          hooks.defer!({ target: t, operands: [{ node: value, letters }], out: letters, scale: 1 });
        } else this.seed(t, value);
      },
      giveSum: (i, c) => {
        const t = n.inputs[i];
        if (!hooks.active(t)) return;
        if (hooks.defers?.(t)) hooks.defer!({ ...c, target: t });
        else this.seed(t, contract(b, c, fwd.get(t).shape, n.span, `d(${fwd.get(t).label})`));
      },
      fresh: () => String.fromCharCode(65 + this.freshCount++ % 26),
      label: (what) => `${n.label}.${what}`,
    };
  }
}

export function identityLetters(rank: number): string {
  return 'abcdefgh'.slice(0, rank);
}

/**
 * Builds a contraction: one einsum over the operands (or an operand itself when nothing is summed),
 * then the missing axes of `out` inserted, and broadcast to `shape` when one is longer than 1.
 */
export function contract(b: Builder, c: Contraction, shape: Shape, span: Span, label: string): number {
  const have = new Set(c.operands.flatMap((o) => [...o.letters]));
  const present = [...c.out].filter((l) => have.has(l)).join('');
  let v: number;
  if (c.operands.every((o) => o.letters === present)) {
    // nothing summed: an elementwise product (fusable), not a contraction
    v = c.operands.slice(1).reduce((acc, o) => b.binary('mul', acc, o.node, span, label), c.operands[0].node);
    if (c.scale !== 1) v = b.binary('mul', v, b.constant(c.scale, span), span, label);
  } else v = b.einsum(`${c.operands.map((o) => o.letters).join(',')}->${present}`, c.operands.map((o) => o.node), c.scale, span, label);
  let broadcastNeeded = false;
  [...c.out].forEach((l, axis) => {
    if (have.has(l)) return;
    v = b.unsqueeze(v, axis, span, label);
    if (shape[axis] !== 1) broadcastNeeded = true;
  });
  return broadcastNeeded ? b.broadcast(v, shape, span, label) : v;
}

/** Contributions that are zero-paddings of disjoint last-axis blocks tiling the whole axis: their concatenation. */
function tiled(b: Builder, list: readonly number[], span: Span, label: string): number | undefined {
  const nodes = list.map((id) => b.node(id));
  const rank = nodes[0].shape.length;
  if (!nodes.every((n) => n.op === 'pad' && (n.attrs as OpAttrs['pad']).axis === rank - 1)) return undefined;
  const parts = nodes.map((n) => ({ n, ...(n.attrs as OpAttrs['pad']), width: b.shape(n.inputs[0])[rank - 1] as Dim }));
  parts.sort((p, q) => p.start - q.start);
  let at = 0;
  for (const p of parts) {
    if (p.start !== at || typeof p.width !== 'number') return undefined;
    at += p.width;
  }
  if (at !== parts[0].size) return undefined;
  return parts.slice(1).reduce((acc, p) => b.concat(acc, p.n.inputs[0], span, label), parts[0].n.inputs[0]);
}
