/**
 * Merge matmuls: sibling matmuls that read the same operand through row blocks of the same stacked
 * weight (an LSTM's four gates, a GRU's three) become one matmul over the union of the blocks,
 * followed by last-axis slices. One matmul for all gates of a step; applies inside scan bodies too.
 */
import type { Graph, Node } from '../ir/graph.ts';
import type { OpAttrs } from '../ir/ops.ts';

interface Part { mm: Node; start: number; count: number }

export function mergeMatmuls(g: Graph): void {
  for (const n of g.ordered()) {
    const a = n.attrs as Partial<OpAttrs['scan']>;
    if (n.op === 'scan' && a.body) mergeMatmuls(a.body);
  }
  // key: operand, weight param, bias param (or -) → the matmuls reading row blocks of them
  const groups = new Map<string, Part[]>();
  for (const mm of g.ordered()) {
    if (mm.op !== 'matmul') continue;
    const w = g.get(mm.inputs[1]);
    if (w.op !== 'rows') continue;
    const { start, count } = w.attrs as OpAttrs['rows'];
    let biasKey = '-';
    if (mm.inputs.length > 2) {
      const b = g.get(mm.inputs[2]);
      if (b.op !== 'rows') continue;
      const ba = b.attrs as OpAttrs['rows'];
      if (ba.start !== start || ba.count !== count) continue;
      biasKey = String(b.inputs[0]);
    }
    const key = `${mm.inputs[0]}|${w.inputs[0]}|${biasKey}`;
    const list = groups.get(key) ?? [];
    list.push({ mm, start, count });
    groups.set(key, list);
  }
  // uses of each merged matmul move to its slice, in one pass over the graph at the end
  const moved = new Map<number, number>();
  for (const parts of groups.values()) {
    if (parts.length < 2) continue;
    parts.sort((p, q) => p.start - q.start);
    // only contiguous, non-overlapping blocks merge
    if (parts.some((p, i) => i > 0 && parts[i - 1].start + parts[i - 1].count !== p.start)) continue;
    const first = parts[0].mm;
    const lo = parts[0].start;
    const total = parts.reduce((s, p) => s + p.count, 0);
    const wParam = g.get(g.get(first.inputs[1]).inputs[0]);
    const whole = wParam.shape[0] === total && lo === 0;
    const view = (param: number) => (whole ? param : g.add('rows', [param], { start: lo, count: total }, [total, ...g.get(param).shape.slice(1)], first.span, `${g.get(param).label}[${lo}:${lo + total}]`).id);
    const w = view(wParam.id);
    const inputs = [first.inputs[0], w];
    if (first.inputs.length > 2) inputs.push(view(g.get(first.inputs[2]).inputs[0]));
    const label = first.label.replace(/[a-z]$/, '') + '*';
    const merged = g.add('matmul', inputs, { bias: inputs.length > 2 }, [...first.shape.slice(0, -1), total], first.span, label);
    for (const p of parts) {
      const sl = g.add('slice', [merged.id], { start: p.start - lo, count: p.count }, p.mm.shape, p.mm.span, p.mm.label);
      moved.set(p.mm.id, sl.id);
      g.nodes.delete(p.mm.id);
    }
  }
  if (moved.size) {
    for (const n of g.nodes.values()) n.inputs = n.inputs.map((i) => moved.get(i) ?? i);
    for (const o of g.outputs) o.node = moved.get(o.node) ?? o.node;
  }
  reorder(g);
}

/** New nodes get fresh (higher) ids; renumbering (with fresh ids, so they stay unique across the model) keeps `ordered()` topological. */
export function reorder(g: Graph): void {
  // a depth-first post-order from each node in id order, with an explicit stack (graphs can be deep)
  const order: Node[] = [];
  const seen = new Set<number>();
  for (const start of [...g.nodes.values()].sort((a, b) => a.id - b.id)) {
    if (seen.has(start.id)) continue;
    seen.add(start.id);
    const stack: [Node, number][] = [[start, 0]];
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const [n, i] = top;
      if (i < n.inputs.length) {
        top[1]++;
        const id = n.inputs[i]!;
        if (!seen.has(id)) {
          seen.add(id);
          stack.push([g.get(id), 0]);
        }
      } else {
        stack.pop();
        order.push(n);
      }
    }
  }
  const remap = new Map(order.map((n) => [n.id, g.ids.next++]));
  g.nodes.clear();
  for (const n of order) {
    const m = { ...n, id: remap.get(n.id)!, inputs: n.inputs.map((i) => remap.get(i)!) };
    g.nodes.set(m.id, m);
  }
  for (const o of g.outputs) o.node = remap.get(o.node)!;
}
