/**
 * The IR: one node type for the whole graph (tinygrad-style). Every node carries the span of the
 * `.nn` statement it came from, so a problem found in any pass points at the user's line.
 *
 * Shapes are row-major with symbolic leading dims: 'B' (batch) and 'T' (time). A scan's body is a
 * nested Graph whose `state` and `step` nodes stand for the carried state and the step's input.
 */
import type { Span } from '../diagnostics/span.ts';
import type { OpAttrs, OpName } from './ops.ts';

export type Dim = number | 'B' | 'T';
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

export class Graph {
  readonly nodes = new Map<number, Node>();
  outputs: GraphOutput[] = [];
  /** Set by passes/fuse.ts: how the graph runs as kernels. */
  kernels?: readonly { readonly root: number; readonly members: readonly number[] }[];
  private nextId: number;

  constructor(firstId = 0) {
    this.nextId = firstId;
  }

  add<K extends OpName>(op: K, inputs: number[], attrs: OpAttrs[K], shape: Shape, span: Span, label: string, dtype: DType = 'f32'): Node<K> {
    const node: Node<K> = { id: this.nextId++, op, inputs, attrs, shape, dtype, span, label };
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

  /** After ids were rewritten wholesale (see passes/merge-matmuls.ts reorder). */
  renumbered(): void {
    this.nextId = Math.max(this.nextId, ...[...this.nodes.keys()].map((k) => k + 1));
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
