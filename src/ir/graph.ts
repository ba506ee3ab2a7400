/**
 * The IR: one node type for the whole graph (tinygrad-style). Every node carries the span of the
 * `.nn` statement it came from, so a problem found in any pass points at the user's line.
 *
 * Shapes are row-major; a dimension is a number or a named symbolic size: 'B' (batch), 'T' (the
 * length of the chain's input — the target in a seq2seq model), 'S' (a seq2seq model's source
 * length), 'P' (positions already in a causal self-attention's key/value cache while generating:
 * 0 in forward) and 'K' = P + T (its keys). A kernel receives the symbolic sizes it uses as scalars. A scan's body is a nested Graph
 * whose `state`, `step` and `capture` nodes stand for the carried state, the step's input and
 * outer values it reads.
 *
 * Node ids are unique across a whole model, bodies included: every graph of a model draws ids from
 * one IdSource (kernel and buffer names are derived from ids).
 */
import type { Span } from '../diagnostics/span.ts';
import type { OpAttrs, OpName } from './ops.ts';

/** `T/k` (or `S/k`): ⌈T / k⌉, the number of k-step segments of a sequence (reverse mode's recomputation, src/passes/grad/checkpoint.ts). */
export type SegmentDim = `${'T' | 'S'}/${number}`;
export type Dim = number | 'B' | 'T' | 'S' | 'P' | 'K' | SegmentDim;
export type Shape = readonly Dim[];
export type DType = 'f32' | 'i32';

export interface Node<K extends OpName = OpName> {
  readonly id: number;
  readonly op: K;
  inputs: number[];
  attrs: OpAttrs[K];
  shape: Shape;
  dtype: DType;
  readonly span: Span;
  /** Human hint for printers and kernel names, e.g. `lstm0.l1.reverse`. */
  label: string;
}

export interface GraphOutput {
  readonly name: string;
  node: number;
}

/** Where a model's graphs get node ids: one per model, shared by its scan bodies. */
export class IdSource {
  next = 0;
}

/** One kernel of a fused graph (passes/fuse.ts). */
export interface FusedKernel {
  /** The materialized node this kernel computes. */
  readonly root: number;
  /** Nodes computed inline in this kernel (root included), in topological order. */
  readonly members: readonly number[];
  /**
   * An attention's context α·v computed in tiles with a running softmax (codegen/reduce.ts
   * attentionKernel): the weights α = softmax(e) it reads, which it computes itself — neither e nor α
   * gets a buffer for it.
   */
  readonly tiled?: number;
  /** The kernel feeds only attention-weight outputs (generate's `attention: true`): the runtime runs it only when they are asked for. */
  readonly weightsOnly?: true;
}

export class Graph {
  readonly nodes = new Map<number, Node>();
  outputs: GraphOutput[] = [];
  /** Set by passes/fuse.ts: how the graph runs as kernels. */
  kernels?: readonly FusedKernel[];

  constructor(readonly ids: IdSource = new IdSource()) {}

  /** A graph for a scan body, drawing ids from the same source. */
  child(): Graph {
    return new Graph(this.ids);
  }

  add<K extends OpName>(op: K, inputs: number[], attrs: OpAttrs[K], shape: Shape, span: Span, label: string, dtype: DType = 'f32'): Node<K> {
    const node: Node<K> = { id: this.ids.next++, op, inputs, attrs, shape, dtype, span, label };
    this.nodes.set(node.id, node as unknown as Node);
    return node;
  }

  get(id: number): Node {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`internal: no IR node %${id}`);
    return n;
  }

  /** Nodes in id order, which is a topological order (nodes are only created after their inputs). */
  ordered(): Node[] {
    return [...this.nodes.values()].sort((a, b) => a.id - b.id);
  }

  /** consumer counts, graph outputs included */
  users(): Map<number, number[]> {
    const users = new Map<number, number[]>();
    for (const n of this.nodes.values()) users.set(n.id, []);
    for (const n of this.nodes.values()) for (const i of n.inputs) users.get(i)?.push(n.id);
    return users;
  }

  /** Drops nodes nothing reaches from the outputs (or from the given roots). */
  prune(roots: number[] = this.outputs.map((o) => o.node)): void {
    const live = new Set<number>();
    const stack = [...roots];
    while (stack.length) {
      const id = stack.pop()!;
      if (live.has(id)) continue;
      live.add(id);
      stack.push(...this.get(id).inputs);
    }
    for (const id of [...this.nodes.keys()]) if (!live.has(id)) this.nodes.delete(id);
  }

  /** Rewires every use of `from` to `to`. */
  replaceUses(from: number, to: number): void {
    for (const n of this.nodes.values()) n.inputs = n.inputs.map((i) => (i === from ? to : i));
    for (const o of this.outputs) if (o.node === from) o.node = to;
  }
}

export function lastDim(shape: Shape): number {
  const d = shape[shape.length - 1];
  if (typeof d !== 'number') throw new Error('internal: symbolic last dim');
  return d;
}

export function shapeStr(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/**
 * Renumbers a model's nodes 0, 1, 2, … in print order — a graph's nodes in topological order, a
 * scan's body right after the scan — so printed IR reads top to bottom. Ids stay unique.
 */
export function compactIds(g: Graph, ids: IdSource = g.ids, start = true): void {
  if (start) ids.next = 0;
  const remap = new Map<number, number>();
  const order = g.ordered();
  for (const n of order) {
    remap.set(n.id, ids.next++);
    const body = (n.attrs as { body?: Graph }).body;
    if (body) compactIds(body, ids, false);
  }
  g.nodes.clear();
  for (const n of order) {
    const m = { ...n, id: remap.get(n.id)!, inputs: n.inputs.map((i) => remap.get(i)!) };
    g.nodes.set(m.id, m);
  }
  for (const o of g.outputs) o.node = remap.get(o.node)!;
  if (g.kernels) g.kernels = g.kernels.map((k) => ({ ...k, root: remap.get(k.root)!, members: k.members.map((i) => remap.get(i)!), ...(k.tiled !== undefined ? { tiled: remap.get(k.tiled)! } : {}) }));
}
