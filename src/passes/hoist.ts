/**
 * Hoist: a scan body's matmul that reads only the step input (x_t · W_ihᵀ + b_ih) does not depend
 * on the carried state, so it is computed for all time steps at once, before the recurrence, as
 * one large matmul over [B, T, I]; the body then reads its row of the result as its step input.
 * Runs after merge-matmuls, so all gates' input projections move out as a single matmul. With
 * attention inside the step (Bahdanau), only the columns of W_ih that read x_t move out; the
 * context's columns stay in the step.
 */
import type { Graph, Node } from '../ir/graph.ts';
import type { OpAttrs } from '../ir/ops.ts';
import { reorder } from './merge-matmuls.ts';

export function hoistInputProjections(g: Graph): void {
  // the outer graph's params by name (looked up once per hoisted weight: a scan over the graph each time was quadratic)
  const params = new Map<string, number>();
  for (const n of g.nodes.values()) if (n.op === 'param') params.set((n.attrs as OpAttrs['param']).name, n.id);
  for (const scan of g.ordered()) {
    if (scan.op !== 'scan') continue;
    const body = (scan.attrs as OpAttrs['scan']).body;
    hoistInputProjections(body);
    const step = body.ordered().find((n) => n.op === 'step');
    if (!step) continue;
    const users = body.ordered().filter((n) => n.inputs.includes(step.id));
    if (users.length !== 1 || users[0].op !== 'matmul' || users[0].inputs[0] !== step.id) continue;
    const mm = users[0];
    // copy the weight (and bias) views into the outer graph: param, or rows of a param
    const copy = (id: number): number => {
      const n = body.get(id);
      if (n.op === 'param') {
        const name = (n.attrs as OpAttrs['param']).name;
        let known = params.get(name);
        if (known === undefined) params.set(name, (known = g.add('param', [], n.attrs as OpAttrs['param'], n.shape, n.span, n.label).id));
        return known;
      }
      if (n.op === 'rows') return g.add('rows', [copy(n.inputs[0])], n.attrs as OpAttrs['rows'], n.shape, n.span, n.label).id;
      if (n.op === 'cols') return g.add('cols', [copy(n.inputs[0])], n.attrs as OpAttrs['cols'], n.shape, n.span, n.label).id;
      throw new Error(`internal: hoisting a matmul whose weight is ${n.op}`);
    };
    const outer: Node = g.add('matmul', [scan.inputs[0], ...mm.inputs.slice(1).map(copy)], mm.attrs as OpAttrs['matmul'],
      [...g.get(scan.inputs[0]).shape.slice(0, -1), mm.shape[mm.shape.length - 1]], mm.span, `${scan.label}.x·Wᵀ (all steps)`);
    scan.inputs[0] = outer.id;
    step.shape = mm.shape;
    step.label = `${scan.label}.x·Wᵀ[t]`;
    body.replaceUses(mm.id, step.id);
    body.prune();
    reorder(body);
  }
  reorder(g);
}
