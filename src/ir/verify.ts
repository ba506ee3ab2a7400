/**
 * The IR verifier: the invariants every pass must keep. Tests run it after expansion and after
 * every pass (driver.ts `optimize(..., verify)`); a violation is a compiler bug, reported with the
 * node and the rule it breaks.
 *
 * - node ids are unique across the whole model (scan bodies included);
 * - a node's inputs exist in its own graph and come before it (ids are a topological order);
 * - every node's shape is what its op's shape rule gives (ir/ops.ts OP_TABLE: the rules the
 *   builder, ir/build.ts, computes shapes with), a capture's is its outer value's;
 * - `state`, `step` and `capture` appear only in scan bodies, and a capture names one of its
 *   scan's captured inputs; a body's first output is the next state [B, stateSize];
 * - after fusion, every kernel root is a node of its graph and no node is in two kernels.
 */
import type { Graph, Node, Shape } from './graph.ts';
import { shapeStr } from './graph.ts';
import { inferShape, isMismatch, type OpAttrs } from './ops.ts';

export class VerifyError extends Error {}

function fail(n: Node, rule: string): never {
  throw new VerifyError(`IR verifier: %${n.id} = ${n.op} (${n.label}) ${shapeStr(n.shape)}: ${rule}`);
}

const same = (a: Shape, b: Shape) => a.length === b.length && a.every((d, i) => d === b[i]);

export function verifyModel(g: Graph): void {
  verifyGraph(g, new Set(), undefined, undefined);
}

/** `scan` is the scan node whose body `g` is, in graph `outer`. */
function verifyGraph(g: Graph, seen: Set<number>, scan: Node | undefined, outer: Graph | undefined): void {
  for (const n of g.ordered()) {
    if (seen.has(n.id)) fail(n, 'its id is used twice in the model');
    seen.add(n.id);
    for (const i of n.inputs) {
      if (!g.nodes.has(i)) fail(n, `input %${i} is not in its graph`);
      if (i >= n.id) fail(n, `input %${i} does not come before it`);
    }
    const ins = n.inputs.map((i) => g.get(i).shape);
    // every op's shape from the op table's own rule (the one the builder used)
    const r = inferShape(n.op, ins, n.attrs, n.shape);
    if (isMismatch(r)) fail(n, `${r.what}: expected ${r.expected}, got ${r.actual}`);
    if (!same(n.shape, r)) fail(n, `its ${n.op} rule gives shape ${shapeStr(r)}`);
    switch (n.op) {
      case 'state':
      case 'step':
        if (!scan) fail(n, 'appears outside a scan body');
        break;
      case 'capture': {
        if (!scan) fail(n, 'appears outside a scan body');
        const a = scan.attrs as OpAttrs['scan'];
        const k = 2 + (a.init ? 1 : 0) + (n.attrs as OpAttrs['capture']).input;
        if (k >= scan.inputs.length) fail(n, `captures input ${(n.attrs as OpAttrs['capture']).input}, but its scan has ${scan.inputs.length - 2 - (a.init ? 1 : 0)} captures`);
        const captured = outer!.get(scan.inputs[k]!);
        if (!same(captured.shape, n.shape)) fail(n, `captures %${captured.id}, whose shape is ${shapeStr(captured.shape)}`);
        break;
      }
      case 'scan': {
        const a = n.attrs as OpAttrs['scan'];
        const out = a.body.get(a.body.outputs[0]!.node);
        if (!same(out.shape, ['B', a.stateSize])) fail(n, `its body yields ${shapeStr(out.shape)}, expected [B, ${a.stateSize}]`);
        // a padded step writes 0 into the history, which a backward scan would then read as its state
        if (a.init && a.reverse) fail(n, 'a backward scan cannot take an initial state (padded steps come first)');
        verifyGraph(a.body, seen, n, g);
        break;
      }
      case 'stacked': {
        // its shape rule checks the scan's [B, L]; the per-step part is the body output's
        const s = g.get(n.inputs[0]!);
        if (s.op !== 'scan') fail(n, `reads %${s.id}, which is not a scan`);
        const body = (s.attrs as OpAttrs['scan']).body;
        const name = (n.attrs as OpAttrs['stacked']).output;
        const o = body.outputs.find((x) => x.name === name);
        if (!o) fail(n, `its scan has no body output '${name}'`);
        if (!same(n.shape.slice(2), body.get(o.node).shape.slice(1))) fail(n, `its body output '${name}' is ${shapeStr(body.get(o.node).shape)} per step`);
        break;
      }
      default:
        break;
    }
  }
  if (g.kernels) {
    const owner = new Map<number, number>();
    for (const k of g.kernels) {
      if (!g.nodes.has(k.root)) throw new VerifyError(`IR verifier: kernel k${k.root} has no root node`);
      for (const m of k.members) {
        if (owner.has(m)) throw new VerifyError(`IR verifier: %${m} is computed by kernels k${owner.get(m)} and k${k.root}`);
        owner.set(m, k.root);
      }
    }
  }
}
