/**
 * Reverse mode as a compiler pass: a model's forward graph (core ops, before fusion; after
 * merge-matmuls and hoist or not) → a training forward and a backward graph, both plain IR.
 *
 * - The training forward is the model's graph for training (empty key/value caches: P = 0, K = T)
 *   with the values the backward reads added as outputs named `%<id>` — its residuals — including
 *   the per-step body values each scan keeps (stacked body outputs; see scan.ts and `KeepPolicy`).
 *   `forward` and `generate` never run it: a model that does not train pays nothing.
 * - The backward graph reads the model's inputs and weights as the forward does, the residuals
 *   (`saved` nodes) and the output's cotangent (`cotangent`), and outputs the gradient of
 *   Σ output ⊙ cotangent for every weight (named as in the manifest; zeros for a weight that does
 *   not reach the output) and every float input (`input:<name>`).
 *
 * Values cheap to rebuild (weights and views of them, positions, sinusoids, sources) are rebuilt in
 * the backward graph rather than kept. The reverse sweep is sweep.ts; each op's rule, rules.ts; the
 * transpose of a scan (BPTT), scan.ts; recomputation of scan states from checkpoints, checkpoint.ts.
 */
import { DiagnosticBag } from '../../diagnostics/diagnostic.ts';
import { Builder } from '../../ir/build.ts';
import { compactIds, Graph, IdSource, type Node, type Shape } from '../../ir/graph.ts';
import type { ModelIR } from '../../ir/model.ts';
import type { OpAttrs } from '../../ir/ops.ts';
import { printModel } from '../../ir/print.ts';
import { verifyModel } from '../../ir/verify.ts';
import { reorder } from '../merge-matmuls.ts';
import { transposeScanCheckpointed } from './checkpoint.ts';
import { transposeScan, type KeepPolicy, type ScanCx } from './scan.ts';
import { Sweep } from './sweep.ts';

export type { KeepPolicy } from './scan.ts';

export interface GradOptions {
  /** Which scan body values the training forward keeps per step: 'dots' (matmul and einsum outputs, the default; JAX's dots_saveable) or 'none' (recompute every step from its starting state). */
  readonly keep?: KeepPolicy;
  /**
   * Recomputation: keep every k-th state of each scan (neither its history, nor its body values, nor
   * its hoisted input projection, which is recomputed as one matmul) and recompute the rest in the
   * backward, k steps at a time (checkpoint.ts): what a recurrence itself keeps is O(T / k).
   */
  readonly checkpoint?: number;
}

export interface SavedValue {
  /** Its name: the training forward's output and the backward graph's `saved` node (`%<id>`). */
  readonly name: string;
  /** The training forward's node. */
  readonly node: number;
  readonly label: string;
  /** A scan history, a scan's stacked body value, its checkpoints, or another value. */
  readonly kind: 'history' | 'stacked' | 'checkpoints' | 'value';
}

export interface GradIR {
  readonly forward: ModelIR;
  readonly backward: ModelIR;
  readonly saved: readonly SavedValue[];
  /** The backward graph's outputs: weight names (manifest order), then `input:<name>` per float input. */
  readonly outputs: readonly string[];
}

const VIEWS = new Set(['slice', 'concat', 'unsqueeze', 'split_heads', 'merge_heads']);
const REBUILT = new Set(['input', 'lengths', 'param', 'const', 'pos_offsets', 'key_lengths', 'sin_freqs', 'rows', 'cols', 'positions', 'sinusoid']);

export function gradModel(m: ModelIR, options: GradOptions = {}): GradIR {
  const fg = specializeForTraining(m.graph);
  const bag = new DiagnosticBag();
  const weights = [...m.weights];
  const fb = new Builder(fg, bag, weights);
  const b = new Builder(new Graph(), bag, weights);

  // values that carry a gradient: weights, float inputs, and what depends on them
  const active = new Set<number>();
  for (const n of fg.ordered()) {
    const src = n.op === 'param' || (n.op === 'input' && (n.attrs as OpAttrs['input']).form === 'vectors');
    if (n.dtype === 'f32' && (src || n.inputs.some((i) => active.has(i)))) active.add(n.id);
  }

  // with recomputation, a scan's hoisted input projection is recomputed too (one matmul), not kept
  const stepInputs = new Set(fg.ordered().filter((n) => n.op === 'scan').map((n) => n.inputs[0]));
  const primals = new Map<number, number>();
  const saved: SavedValue[] = [];
  const primal = (id: number): number => {
    const known = primals.get(id);
    if (known !== undefined) return known;
    const n = fg.get(id);
    let v: number;
    if (n.op === 'param') v = b.param((n.attrs as OpAttrs['param']).name, n.shape as number[], (n.attrs as OpAttrs['param']).layer, n.span);
    else if (REBUILT.has(n.op) || (options.checkpoint && n.op === 'matmul' && stepInputs.has(id))) v = b.raw(n.op, n.inputs.map(primal), { ...n.attrs }, n.shape, n.span, n.label, n.dtype);
    else {
      const name = `%${id}`;
      v = b.saved(name, n.shape, n.dtype, n.span, n.label);
      saved.push({ name, node: id, label: n.label, kind: n.op === 'scan' ? 'history' : n.op === 'stacked' ? 'stacked' : n.op === 'every' ? 'checkpoints' : 'value' });
    }
    primals.set(id, v);
    return v;
  };

  const weightGrads = new Map<string, number[]>();
  const addWeight = (name: string, v: number) => weightGrads.set(name, [...(weightGrads.get(name) ?? []), v]);
  const kept = new Map<string, number>();
  const sweep: Sweep = new Sweep(fg, b, {
    primal,
    active: (id) => active.has(id),
    scan: (n, g) => (options.checkpoint ? transposeScanCheckpointed(scanCx, n, g, options.checkpoint) : transposeScan(scanCx, n, g)),
  });
  const scanCx: ScanCx = {
    b,
    primal,
    active: (id) => active.has(id),
    give: (scan, i, value) => sweep.seed(scan.inputs[i], value),
    weight: addWeight,
    keep(scan, bodyNode) {
      const key = `${scan.id}:${bodyNode}`;
      let id = kept.get(key);
      if (id === undefined) {
        const body = (scan.attrs as OpAttrs['scan']).body;
        const name = `keep%${bodyNode}`;
        body.outputs.push({ name, node: bodyNode });
        const bn = body.get(bodyNode);
        id = fb.stacked(scan.id, name, bn.shape, bn.span, `${bn.label} (every step)`);
        kept.set(key, id);
      }
      return id;
    },
    checkpoints(scan, k) {
      const key = `${scan.id}:every ${k}`;
      let id = kept.get(key);
      if (id === undefined) {
        const a = scan.attrs as OpAttrs['scan'];
        const starts = fb.shift(scan.id, a.init ? scan.inputs[2] : undefined, a.reverse, scan.span, `${scan.label} (state each step starts from)`);
        id = fb.every(starts, k, a.reverse ? k - 1 : 0, scan.span, `${scan.label} (every ${k}th state)`);
        kept.set(key, id);
      }
      return id;
    },
    policy: options.keep ?? 'dots',
  };

  const out = fg.outputs.find((o) => o.name === m.output.name)!;
  sweep.seed(out.node, b.cotangent(m.output.name, fg.get(out.node).shape, m.span));
  sweep.run();

  for (const n of fg.ordered()) {
    if (n.op !== 'param') continue;
    const g = sweep.total(n.id);
    if (g !== undefined) addWeight((n.attrs as OpAttrs['param']).name, g);
  }
  const outputs: { name: string; node: number }[] = [];
  const zeros = (shape: Shape, label: string) => b.broadcast(b.constant(0, m.span), shape, m.span, label);
  for (const w of m.weights) {
    const parts = weightGrads.get(w.name) ?? [];
    const label = `d ${w.name}`;
    const node = parts.length ? parts.reduce((acc, v) => b.binary('add', acc, v, w.span, label)) : zeros(w.shape, label);
    outputs.push({ name: w.name, node });
  }
  for (const inp of m.inputs) {
    if (inp.form !== 'vectors') continue;
    const n = fg.ordered().find((x) => x.op === 'input' && (x.attrs as OpAttrs['input']).name === inp.name);
    const total = n && sweep.total(n.id);
    outputs.push({ name: `input:${inp.name}`, node: total ?? zeros(['B', inp.time, inp.dim!], `d ${inp.name}`) });
  }
  // a view of values that are kept anyway (the h half of a kept LSTM history, the two directions of a
  // bidirectional layer side by side) is rebuilt from them
  for (let i = saved.length - 1; i >= 0; i--) {
    const n = fg.get(saved[i].node);
    if (!VIEWS.has(n.op) || !n.inputs.every((x) => saved.some((s) => s.node === x))) continue;
    const old = primals.get(n.id)!;
    const v = b.raw(n.op as 'slice', n.inputs.map((x) => primals.get(x)!), { ...(n.attrs as OpAttrs['slice']) }, n.shape, n.span, n.label);
    b.g.replaceUses(old, v);
    b.g.nodes.delete(old);
    saved.splice(i, 1);
    i = saved.length;
  }
  if (bag.hasErrors) throw new Error(`internal: reverse mode built an ill-shaped graph: ${bag.items.map((d) => d.message).join('; ')}`);
  b.g.outputs = outputs;
  b.g.prune();
  reorder(b.g);
  compactIds(b.g);
  for (const s of saved) fg.outputs.push({ name: s.name, node: s.node });
  verifyModel(fg);
  verifyModel(b.g);
  return {
    forward: { ...m, graph: fg, weights },
    backward: { ...m, name: `${m.name}.backward`, graph: b.g, weights, output: { name: 'gradients', seq: false } },
    saved,
    outputs: outputs.map((o) => o.name),
  };
}

/**
 * The model's graph as training runs it (a copy, same node ids): key/value caches are empty (P = 0),
 * so `time_concat(cache, x)` is x and the keys' length K is T.
 */
export function specializeForTraining(g: Graph): Graph {
  const ids = new IdSource();
  ids.next = g.ids.next;
  const c = cloneGraph(g, ids);
  for (const n of c.ordered()) {
    if (n.op !== 'time_concat') continue;
    c.replaceUses(n.id, n.inputs[1]);
    c.nodes.delete(n.id);
  }
  const roots = c.outputs.map((o) => o.node);
  c.prune(roots);
  const untime = (graph: Graph): void => {
    for (const n of graph.nodes.values()) {
      n.shape = n.shape.map((d) => (d === 'K' ? 'T' : d));
      if (n.op === 'scan') untime((n.attrs as OpAttrs['scan']).body);
    }
  };
  untime(c);
  return c;
}

function cloneGraph(g: Graph, ids: IdSource): Graph {
  const c = new Graph(ids);
  for (const n of g.ordered()) {
    const attrs = n.op === 'scan' ? { ...(n.attrs as OpAttrs['scan']), body: cloneGraph((n.attrs as OpAttrs['scan']).body, ids) } : { ...n.attrs };
    c.nodes.set(n.id, { ...n, inputs: [...n.inputs], attrs, shape: [...n.shape] } as Node);
  }
  c.outputs = g.outputs.map((o) => ({ ...o }));
  return c;
}

/** `--emit=ir-grad`: what the training forward keeps, then the backward graph (with codegen's host notes per kernel, as ir-opt). */
export function printGrad(gr: GradIR, notes?: ReadonlyMap<number, readonly string[]>): string {
  const lines = [`training forward of ${gr.forward.name} keeps ${gr.saved.length} values:`];
  for (const s of gr.saved) lines.push(`  ${s.name}  ${s.kind}  # ${s.label}`);
  return `${lines.join('\n')}\n${printModel(gr.backward, notes)}`;
}
