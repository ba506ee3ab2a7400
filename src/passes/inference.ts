/**
 * The graph `forward` and `generate` run: dropout is the identity there (PyTorch's eval mode), so
 * each `dropout` node is replaced by its input and its mask is dropped. Training graphs keep them
 * (src/passes/grad: x ⊙ mask, the mask filled by the runtime each step).
 */
import type { Graph } from '../ir/graph.ts';

export function removeDropout(g: Graph): void {
  let any = false;
  for (const n of g.ordered()) {
    if (n.op !== 'dropout') continue;
    g.replaceUses(n.id, n.inputs[0]!);
    any = true;
  }
  if (any) g.prune();
}
