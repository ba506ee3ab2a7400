/**
 * Fuse: partition each graph (and each scan body) into kernels.
 *
 * A node gets its own buffer ("materialized") when it is a source (input, param, state, step), a
 * graph output, a reduction or a recurrence (class reduce/opaque), an operand of a reduction or a
 * recurrence (they read whole rows from memory), or a matmul's data operand that computes anything
 * (inlining it would recompute it once per output column). Pure index remaps of materialized
 * values (rows, slice, concat, flatten, gather — "views") never need a buffer: a matmul reads an
 * embedding row or a state slice in place. Every other node is inlined into
 * the one kernel that consumes it; a node whose consumers sit in different kernels is materialized
 * instead of computed twice — except that a row reduction (softmax, layernorm) computes a cheap
 * elementwise producer it alone reads (a residual add) inline. So a matmul followed by a bias and
 * an activation is one kernel, a residual add and the layernorm after it are one; an
 * LSTM step — the recurrent matmul for all four gates, the gate nonlinearities and the state
 * update — is one kernel; a GRU with reset = before needs two (its second matmul reads r ∘ h).
 */
import type { Graph, Node } from '../ir/graph.ts';
import { OP_TABLE, type OpAttrs } from '../ir/ops.ts';

/** The most elementwise ops one kernel computes inline along a chain (see fuse). */
export const MAX_INLINE_DEPTH = 64;

const VIEWS = new Set(['rows', 'cols', 'const', 'slice', 'concat', 'flatten', 'gather', 'unsqueeze', 'split_heads', 'merge_heads']);

function isView(g: Graph, n: Node, materialized: Set<number>): boolean {
  return VIEWS.has(n.op) && n.inputs.every((i) => materialized.has(i) || isView(g, g.get(i), materialized));
}

/**
 * The softmax α of an attention's context `n` = einsum(α, v) summing α's last axis, when n can be
 * computed in tiles with a running softmax (FlashAttention's rescaling) instead of reading α.
 */
function attentionWeights(g: Graph, n: Node): Node | undefined {
  if (n.op !== 'einsum') return undefined;
  const [lhs, out] = (n.attrs as OpAttrs['einsum']).spec.split('->') as [string, string];
  const ops = lhs.split(',');
  if (ops.length !== 2) return undefined;
  const [la, lv] = ops as [string, string];
  const a = g.get(n.inputs[0]!);
  if (a.op !== 'softmax' || (a.attrs as OpAttrs['softmax']).log) return undefined;
  const s = la[la.length - 1]!;
  // s summed (in v, not in the output); α's other letters and v's are the output's
  if (out.includes(s) || !lv.includes(s) || [...la.slice(0, -1), ...lv.replace(s, '')].some((c) => !out.includes(c))) return undefined;
  return a;
}

/** Nodes that feed only graph outputs named 'attention' (a decoder's attention weights, which generate() reads only with `attention: true`). */
function weightsOnlyNodes(g: Graph, nodes: readonly Node[], users: ReadonlyMap<number, readonly number[]>): Set<number> {
  const only = new Set<number>();
  const named = new Map(g.outputs.map((o) => [o.node, o.name]));
  if (![...named.values()].includes('attention')) return only;
  for (const n of [...nodes].reverse()) {
    const name = named.get(n.id);
    if (name !== undefined && name !== 'attention') continue;
    const us = users.get(n.id) ?? [];
    if ((name === 'attention' || us.length) && us.every((u) => only.has(u))) only.add(n.id);
  }
  return only;
}

/**
 * `inline: false` gives every non-source node its own kernel (weight row views excepted): -O0, for
 * measuring. `training` (reverse mode's graphs):
 * - in a scan body, an elementwise value read by several kernels is computed in each of them rather
 *   than given a buffer, unless computing it inline would compute a contraction — a backward LSTM
 *   step's gate recomputation and pointwise backward are then one kernel beside the step kernel, not
 *   one kernel per gate (kernel launches, not arithmetic, are what a step of B rows costs);
 * - outside scan bodies, an einsum that sums (a row sum of a layer norm's or softmax's backward, a
 *   weight gradient) gets its own buffer: inlined into a consumer that varies along the summed axis,
 *   it would be summed again for every element of that axis.
 */
export function fuse(g: Graph, options: { inline: boolean; training?: boolean } = { inline: true }, inBody = false): void {
  for (const n of g.ordered()) if (n.op === 'scan') fuse((n.attrs as OpAttrs['scan']).body, options, true);
  const nodes = g.ordered();
  const users = g.users();
  // (a recurrence's step runs every kernel of its body: what it exports, it computes)
  const weightsOnly = inBody ? new Set<number>() : weightsOnlyNodes(g, nodes, users);
  // attention contexts computed in tiles: their weights are read by nothing else (but what only
  // feeds reported attention weights), and are no graph output but those weights. Not inside a
  // recurrence's step (Bahdanau): one query row per step, whose weights the step exports anyway.
  const tiled = new Map<number, Node>();
  const isMain = (id: number) => g.outputs.some((o) => o.node === id && o.name !== 'attention');
  if (options.inline && !inBody) {
    for (const n of nodes) {
      const a = attentionWeights(g, n);
      if (a && !weightsOnly.has(n.id) && !isMain(a.id) && (users.get(a.id) ?? []).every((u) => u === n.id || weightsOnly.has(u))) tiled.set(n.id, a);
    }
  }
  // weights computed by the tiled kernel alone (nothing else reads them) get no buffer of their own;
  // weights also reported keep their kernels (and their scores'), run only when asked for
  const inTiled = new Set<number>();
  for (const [c, a] of tiled) {
    if ((users.get(a.id) ?? []).every((u) => u === c) && !g.outputs.some((o) => o.node === a.id)) {
      inTiled.add(a.id);
      continue;
    }
    weightsOnly.add(a.id);
    const e = a.inputs[0]!;
    if ((users.get(e) ?? []).length === 1 && !g.outputs.some((o) => o.node === e)) weightsOnly.add(e);
  }
  const materialized = new Set<number>(g.outputs.map((o) => o.node));
  // -O0: every op its own kernel, except weight views and constants (read in place)
  if (!options.inline) for (const n of nodes) if (n.op !== 'rows' && n.op !== 'cols' && n.op !== 'const') materialized.add(n.id);
  for (const n of nodes) {
    const cls = OP_TABLE[n.op].fusion;
    // a key/value cache concatenation is kept: it is the next decoding step's cache
    if (inTiled.has(n.id)) continue;
    if (cls === 'source' || cls === 'reduce' || cls === 'opaque' || n.op === 'time_concat') materialized.add(n.id);
    if (options.training && !inBody && n.op === 'einsum') {
      const [lhs, out] = (n.attrs as OpAttrs['einsum']).spec.split('->') as [string, string];
      if ([...lhs].some((c) => !out.includes(c))) materialized.add(n.id);
    }
  }
  // operands that must be read from memory: a view (a slice of the merged Q/K/V projection, a head
  // split) stays a view, and what it views gets the buffer
  const mustRead = (id: number): void => {
    const n = g.get(id);
    if (materialized.has(id) || OP_TABLE[n.op].fusion === 'source' || n.op === 'const') return;
    if (VIEWS.has(n.op)) n.inputs.forEach(mustRead);
    else materialized.add(id);
  };
  // A row reduction (softmax, layernorm) reads its row two or three times; a cheap elementwise
  // producer with no other consumer (a residual add) is computed inline in those reads instead of
  // getting a buffer — anything costly below it (a matmul, an einsum) still does.
  const cheapInline = (root: number): void => {
    const stack = [root];
    while (stack.length) {
      const n = g.get(stack.pop()!);
      if (materialized.has(n.id) || OP_TABLE[n.op].fusion === 'source' || n.op === 'const') continue;
      const cls = OP_TABLE[n.op].fusion;
      if (cls === 'elementwise' || VIEWS.has(n.op) || n.op === 'positions') stack.push(...n.inputs);
      else materialized.add(n.id);
    }
  };
  for (const n of nodes) {
    const cls = OP_TABLE[n.op].fusion;
    if (inTiled.has(n.id)) {
      // computed row by row inside the tiled context: its scores e inline, its lengths from a buffer
      n.inputs.slice(1).forEach((i) => materialized.add(i));
      continue;
    }
    if (tiled.has(n.id)) {
      // a kernel of its own; v is read once per key: a buffer (or a view of one)
      materialized.add(n.id);
      mustRead(n.inputs[1]!);
      continue;
    }
    if (options.inline && (n.op === 'softmax' || n.op === 'layernorm')) {
      const x = g.get(n.inputs[0]);
      const single = (users.get(x.id) ?? []).length === 1 && !g.outputs.some((o) => o.node === x.id);
      if (single && OP_TABLE[x.op].fusion === 'elementwise') {
        cheapInline(x.id);
        n.inputs.slice(1).forEach((i) => materialized.add(i));
        continue;
      }
    }
    // reductions and recurrences read whole rows/sequences from a buffer, views included
    if (cls === 'reduce' || cls === 'opaque') n.inputs.forEach((i) => materialized.add(i));
    // a contraction's operand is read once per reduction step: computed inline it would be recomputed
    // once per output element it does not vary with (a matmul's output columns), so it gets a buffer
    // unless it varies with every output axis (a score's vᵀ·act(…) with one output column)
    if (n.op === 'matmul' && g.get(n.inputs[1]).shape[0] !== 1) mustRead(n.inputs[0]);
    if (n.op === 'einsum') {
      const [lhs, out] = (n.attrs as OpAttrs['einsum']).spec.split('->');
      lhs.split(',').forEach((letters, i) => {
        if ([...out].some((c) => !letters.includes(c))) mustRead(n.inputs[i]);
      });
    }
  }
  // A chain of elementwise ops is inlined into one kernel, but not without bound: every
  // MAX_INLINE_DEPTH-th op of a chain gets a buffer, so that no kernel body nests deeper than that
  // (the body writer recurses once per inlined op: 1,300 relus in a row overflowed the stack).
  // The cut goes at the deepest input (the end of the chain so far), so that a chain shared by
  // two consumers (a residual's x and f(x)) is cut once.
  const depth = new Map<number, number>();
  const depthOf = (n: Node) => 1 + Math.max(0, ...n.inputs.map((i) => depth.get(i) ?? 0));
  for (const n of nodes) {
    if (materialized.has(n.id) || OP_TABLE[n.op].fusion === 'source' || n.op === 'const') {
      depth.set(n.id, 0);
      continue;
    }
    let d = depthOf(n);
    if (d > MAX_INLINE_DEPTH) {
      const deepest = n.inputs.reduce((a, b) => ((depth.get(b) ?? 0) > (depth.get(a) ?? 0) ? b : a));
      if (!VIEWS.has(g.get(deepest).op)) {
        materialized.add(deepest);
        depth.set(deepest, 0);
        d = depthOf(n);
      }
      if (d > MAX_INLINE_DEPTH && !VIEWS.has(n.op)) {
        materialized.add(n.id);
        d = 0;
      }
    }
    depth.set(n.id, d);
  }
  // what a kernel computes inline without a contraction (recomputed in each kernel reading it)
  const recompute = options.inline && options.training === true && inBody;
  const cheapMemo = new Map<number, boolean>();
  const cheap = (id: number): boolean => {
    const n = g.get(id);
    if (materialized.has(id) || OP_TABLE[n.op].fusion === 'source' || n.op === 'const') return true;
    let c = cheapMemo.get(id);
    if (c === undefined) cheapMemo.set(id, (c = (OP_TABLE[n.op].fusion === 'elementwise' || VIEWS.has(n.op)) && n.inputs.every(cheap)));
    return c;
  };
  // views of materialized values stay views; anything else read by matmul became materialized above.
  // Walk consumers before producers, assigning each node to its consumers' kernel.
  const owner = new Map<number, number>();
  for (const n of [...nodes].reverse()) {
    if (materialized.has(n.id)) {
      if (OP_TABLE[n.op].fusion !== 'source') owner.set(n.id, n.id);
      continue;
    }
    const kernels = new Set((users.get(n.id) ?? []).map((u) => owner.get(u)).filter((k): k is number => k !== undefined));
    if (kernels.size === 1) owner.set(n.id, [...kernels][0]);
    else if (kernels.size > 1 && recompute && cheap(n.id)) owner.set(n.id, [...kernels][0]!);
    else if (kernels.size > 1 && !isView(g, n, materialized)) {
      materialized.add(n.id);
      owner.set(n.id, n.id);
    } // a view read by several kernels is simply inlined into each (it costs an index computation)
  }
  // each kernel's members in topological order, in one pass
  const members = new Map<number, number[]>();
  for (const n of nodes) {
    const k = owner.get(n.id);
    if (k === undefined) continue;
    let list = members.get(k);
    if (!list) members.set(k, (list = []));
    list.push(n.id);
  }
  g.kernels = nodes.filter((n) => owner.get(n.id) === n.id).map((n) => ({
    root: n.id, members: members.get(n.id)!,
    ...(tiled.has(n.id) ? { tiled: tiled.get(n.id)!.id } : {}),
    ...(weightsOnly.has(n.id) ? { weightsOnly: true as const } : {}),
  }));
}
