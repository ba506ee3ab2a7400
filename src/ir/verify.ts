/**
 * The IR verifier: the invariants every pass must keep. Tests run it after expansion and after
 * every pass (driver.ts `optimize(..., verify)`); a violation is a compiler bug, reported with the
 * node and the rule it breaks.
 *
 * - node ids are unique across the whole model (scan bodies included);
 * - a node's inputs exist in its own graph and come before it (ids are a topological order);
 * - shapes agree with each op's shape rule (the same rules as ir/build.ts);
 * - `state`, `step` and `capture` appear only in scan bodies, and a capture names one of its
 *   scan's captured inputs; a body's first output is the next state [B, stateSize];
 * - after fusion, every kernel root is a node of its graph and no node is in two kernels.
 */
import type { Dim, Graph, Node, Shape } from './graph.ts';
import { shapeStr } from './graph.ts';
import type { OpAttrs } from './ops.ts';

export class VerifyError extends Error {}

function fail(n: Node, rule: string): never {
  throw new VerifyError(`IR verifier: %${n.id} = ${n.op} (${n.label}) ${shapeStr(n.shape)}: ${rule}`);
}

const same = (a: Shape, b: Shape) => a.length === b.length && a.every((d, i) => d === b[i]);

function broadcast(a: Shape, b: Shape): Shape | undefined {
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) return undefined;
    out.push(da === 1 ? db : da);
  }
  return out;
}

export function verifyModel(g: Graph): void {
  verifyGraph(g, new Set(), undefined);
}

function verifyGraph(g: Graph, seen: Set<number>, scan: Node | undefined): void {
  for (const n of g.ordered()) {
    if (seen.has(n.id)) fail(n, 'its id is used twice in the model');
    seen.add(n.id);
    for (const i of n.inputs) {
      if (!g.nodes.has(i)) fail(n, `input %${i} is not in its graph`);
      if (i >= n.id) fail(n, `input %${i} does not come before it`);
    }
    const ins = n.inputs.map((i) => g.get(i).shape);
    const want = (s: Shape, what: string) => {
      if (!same(n.shape, s)) fail(n, `${what}: expected shape ${shapeStr(s)}`);
    };
    switch (n.op) {
      case 'state':
      case 'step':
        if (!scan) fail(n, 'appears outside a scan body');
        break;
      case 'capture': {
        if (!scan) fail(n, 'appears outside a scan body');
        const a = scan.attrs as OpAttrs['scan'];
        const first = 2 + (a.init ? 1 : 0);
        if (first + (n.attrs as OpAttrs['capture']).input >= scan.inputs.length) fail(n, `captures input ${(n.attrs as OpAttrs['capture']).input}, but its scan has ${scan.inputs.length - first} captures`);
        break;
      }
      case 'matmul': {
        const [x, w] = ins;
        if (w.length !== 2 || x[x.length - 1] !== w[1]) fail(n, `x ${shapeStr(x)} · wᵀ with w ${shapeStr(w)}`);
        want([...x.slice(0, -1), w[0]], 'matmul');
        break;
      }
      case 'binary': {
        const b = broadcast(ins[0], ins[1]);
        if (!b) fail(n, `operands ${shapeStr(ins[0])} and ${shapeStr(ins[1])} do not broadcast`);
        want(b, 'broadcast');
        break;
      }
      case 'unary':
      case 'softmax':
      case 'layernorm':
      case 'mask':
        want(ins[0], n.op);
        break;
      case 'einsum': {
        const [lhs, out] = (n.attrs as OpAttrs['einsum']).spec.split('->');
        const size = new Map<string, Dim>();
        lhs.split(',').forEach((letters, i) => {
          if (letters.length !== ins[i].length) fail(n, `operand ${i} has rank ${ins[i].length}, spec '${letters}'`);
          [...letters].forEach((c, j) => {
            if (size.has(c) && size.get(c) !== ins[i][j]) fail(n, `axis '${c}' has sizes ${size.get(c)} and ${ins[i][j]}`);
            size.set(c, ins[i][j]);
          });
        });
        want([...out].map((c) => size.get(c)!), 'einsum');
        break;
      }
      case 'scan': {
        const a = n.attrs as OpAttrs['scan'];
        const out = a.body.get(a.body.outputs[0].node);
        if (!same(out.shape, ['B', a.stateSize])) fail(n, `its body yields ${shapeStr(out.shape)}, expected [B, ${a.stateSize}]`);
        if (a.init && !same(ins[2], ['B', a.stateSize])) fail(n, `its initial state is ${shapeStr(ins[2])}, expected [B, ${a.stateSize}]`);
        // a padded step writes 0 into the history, which a backward scan would then read as its state
        if (a.init && a.reverse) fail(n, 'a backward scan cannot take an initial state (padded steps come first)');
        want([ins[0][0], ins[0][1], a.stateSize], 'scan history');
        verifyGraph(a.body, seen, n);
        break;
      }
      case 'scatter_add': {
        const [ids, v] = ins;
        if (!same(v.slice(0, -1), ids)) fail(n, `values ${shapeStr(v)} do not match ids ${shapeStr(ids)}`);
        want([(n.attrs as OpAttrs['scatter_add']).rows, v[v.length - 1]], 'scatter_add');
        break;
      }
      case 'pad': {
        const { axis, start, size } = n.attrs as OpAttrs['pad'];
        const d = ins[0][axis];
        if (typeof d === 'number' && start + d > size) fail(n, `pads ${d} values at ${start} into ${size}`);
        want(ins[0].map((x, i) => (i === axis ? size : x)), 'pad');
        break;
      }
      case 'broadcast': {
        const b = broadcast(ins[0], n.shape);
        if (!b || !same(b, n.shape)) fail(n, `${shapeStr(ins[0])} does not broadcast to it`);
        break;
      }
      case 'unpool': {
        const [gs] = ins;
        if (!same([gs[0], n.shape[1], gs[1]], n.shape)) fail(n, `g ${shapeStr(gs)} does not go back into it`);
        if ((n.attrs as OpAttrs['unpool']).mode === 'max' && (ins.length !== 3 || !same(ins[2], n.shape))) fail(n, 'max needs the pooled input, of its shape');
        break;
      }
      case 'stacked': {
        const s = g.get(n.inputs[0]);
        if (s.op !== 'scan') fail(n, `reads %${s.id}, which is not a scan`);
        const body = (s.attrs as OpAttrs['scan']).body;
        const o = body.outputs.find((x) => x.name === (n.attrs as OpAttrs['stacked']).output);
        if (!o) fail(n, `its scan has no body output '${(n.attrs as OpAttrs['stacked']).output}'`);
        want([s.shape[0], s.shape[1], ...body.get(o.node).shape.slice(1)], 'stacked');
        break;
      }
      case 'segments': {
        const [b, l, d] = ins[0];
        const k = (n.attrs as OpAttrs['segments']).k;
        if (typeof d !== 'number' || (l !== 'T' && l !== 'S')) fail(n, `cuts ${shapeStr(ins[0])}: needs [B, T or S, D]`);
        want([b, `${l}/${k}`, k * d], 'segments');
        break;
      }
      case 'unsegment': {
        const [b, l, d] = ins[0];
        const k = (n.attrs as OpAttrs['unsegment']).k;
        if (typeof l !== 'string' || !l.endsWith(`/${k}`) || typeof d !== 'number' || d % k) fail(n, `joins ${shapeStr(ins[0])}: needs [B, L/${k}, ${k}·D]`);
        want([b, l.slice(0, -`/${k}`.length) as Dim, d / k], 'unsegment');
        break;
      }
      case 'every': {
        const [b, l, d] = ins[0];
        if (l !== 'T' && l !== 'S') fail(n, `takes every k-th step of ${shapeStr(ins[0])}: needs [B, T or S, D]`);
        want([b, `${l}/${(n.attrs as OpAttrs['every']).k}`, d], 'every');
        break;
      }
      case 'shift':
        want(ins[0], 'shift');
        if (ins.length > 1 && !same(ins[1], [ins[0][0], ins[0][2]])) fail(n, `initial state ${shapeStr(ins[1])} is not a step of the history`);
        break;
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
