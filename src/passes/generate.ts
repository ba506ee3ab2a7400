/**
 * What generation needs from a model, decided in one place:
 *
 * - `generatedNodes`: the nodes that depend on the generated input (its tokens, lengths, position
 *   offsets, key lengths, and the key/value caches) — the decoder part, which generate() runs once
 *   per token; everything else is the encoder part, run once per source. The plan builder splits
 *   instructions by it, and `generability` looks for backward recurrences in it.
 * - `generability`: whether generate() can drive the model one token at a time, and if not, why
 *   and how to change the spec. Expand decides it once per model (src/passes/expand.ts): a `decode`
 *   statement on a model that cannot generate is error E0513 there, and the plan carries the same
 *   reason for a generate() call on a model without one.
 */
import type { Graph, Node } from '../ir/graph.ts';
import type { ModelInput } from '../ir/model.ts';
import type { OpAttrs } from '../ir/ops.ts';

export type Generability = { readonly ok: true } | { readonly ok: false; readonly reason: string; readonly suggestion: string };

/** Nodes whose value depends on input `input` being generated token by token. */
export function generatedNodes(g: Graph, input: string): Set<number> {
  const seeds = (n: Node): boolean => {
    switch (n.op) {
      case 'input':
        return (n.attrs as OpAttrs['input']).name === input;
      case 'lengths':
        return (n.attrs as OpAttrs['lengths']).input === input;
      case 'pos_offsets':
      case 'key_lengths':
        return (n.attrs as OpAttrs['key_lengths']).input === input;
      case 'cache':
        return true;
      default:
        return false;
    }
  };
  const set = new Set<number>();
  for (const n of g.ordered()) if (seeds(n) || n.inputs.some((i) => set.has(i))) set.add(n.id);
  return set;
}

/**
 * Whether generate() can feed a model its own output one token at a time: the fed input is tokens,
 * the output is one distribution per step over ids the input accepts, and no layer on the fed
 * input reads later tokens (a non-causal self-attention, `readsAhead`; a backward recurrence).
 */
export function generability(g: Graph, inputs: readonly ModelInput[], output: Node, seq: boolean, readsAhead: string | undefined): Generability {
  const no = (reason: string, suggestion: string): Generability => ({ ok: false, reason, suggestion });
  const inp = inputs[inputs.length - 1]!;
  if (inp.form !== 'tokens') return no(`its input '${inp.name}' is feature vectors, not tokens it could feed back`, `declare 'input ${inp.name}: tokens(vocab = V)', or remove the decode statement`);
  if (!seq) return no(`its output has no time axis (pool or flatten): there is no next-token distribution per step`, `remove the decode statement, or the pool / flatten layer`);
  const classes = output.shape[output.shape.length - 1];
  if (output.shape.length !== 3 || typeof classes !== 'number') return no(`its output is not one distribution per step`, `end the model with a 'linear V' layer over the sequence`);
  if (readsAhead) return no(`'${readsAhead}' attends to later tokens (self-attention without causal)`, `write 'attention self, causal' in a model that generates`);
  const gen = generatedNodes(g, inp.name);
  for (const n of g.ordered()) {
    if (n.op === 'scan' && gen.has(n.id) && (n.attrs as OpAttrs['scan']).reverse) {
      return no(`'${n.label.replace(/\.l\d+\.reverse$/, '')}' is bidirectional: each output reads later tokens`, `drop 'bidirectional' from the layers that read '${inp.name}', or remove the decode statement`);
    }
  }
  const vocab = inp.vocab!;
  if (classes > vocab) {
    return no(
      `its output has ${classes} classes but its input '${inp.name}' has vocab = ${vocab}: a generated token ${vocab} … ${classes - 1} could not be fed back`,
      `make the last layer 'linear ${vocab}' (the input's vocab), or declare 'input ${inp.name}: tokens(vocab = ${classes})'`,
    );
  }
  return { ok: true };
}
