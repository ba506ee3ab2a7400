/**
 * The transpose of a `scan` (backpropagation through time), as JAX transposes `lax.scan`: a second
 * scan running the other way, whose carry is the cotangent of the state, and whose body is the
 * reverse sweep of the forward body.
 *
 * Per step the backward body reads one row of a stacked step input, [dH[t] | s[t-1] | x[t] | kept…]:
 * the history's cotangent, the state the forward step started from (`shift` of the history, with
 * the initial state first), the forward step input, and the forward body values the training
 * forward kept (stacked body outputs, index.ts `keep`). Anything else the sweep needs is recomputed
 * from those. With the state's cotangent ds carried, the step's cotangent is ds + dH[t]; the body
 * sweep gives the cotangent of the previous state (the next carry), of the step input (stacked:
 * `dx`, [B, L, Dx]) and, deferred, of the weights and captured outer values.
 *
 * Deferred contributions are summed over all steps by ONE contraction outside the loop: their
 * per-step operands are stacked — as the body's extra outputs, or read from what is already stacked
 * outside (the shifted history, the step inputs, the kept values) — and the einsum gains a time
 * letter it sums over. A recurrent weight's gradient is then one [G·H, B·L] × [B·L, H] product
 * (and the hoisted input projection's is the outer matmul's own transpose, one more). Padded
 * steps contribute nothing: the forward leaves the state unchanged there, so the backward carry
 * passes through unchanged (the scan op's own padding rule), and every stacked body output is 0 at
 * padded steps; a contraction is made to include at least one such operand.
 */
import type { Builder } from '../../ir/build.ts';
import type { Graph, Node, Shape } from '../../ir/graph.ts';
import { OP_TABLE, type OpAttrs } from '../../ir/ops.ts';
import { contract, Sweep, type Contraction, type Deferred, type Operand } from './sweep.ts';

export type KeepPolicy = 'dots' | 'none';

/** What the transpose needs from the outer sweep (index.ts). */
export interface ScanCx {
  /** The outer backward graph. */
  readonly b: Builder;
  primal(id: number): number;
  active(id: number): boolean;
  /** Adds to the cotangent of the scan's input `i`. */
  give(scan: Node<'scan'>, i: number, value: number): void;
  /** Adds to a weight's gradient. */
  weight(name: string, value: number): void;
  /** The training forward's stacked copy of a body value (a node of the outer forward graph). */
  keep(scan: Node<'scan'>, bodyNode: number): number;
  /** The training forward's checkpoints of a scan: the state each k-step segment starts from, [B, L/k, S]. */
  checkpoints(scan: Node<'scan'>, k: number): number;
  readonly policy: KeepPolicy;
}

/** How an operand of a deferred contraction is read outside the loop. */
type Outside = { readonly perStep: boolean; make(): number } | { readonly emit: string };

export function transposeScan(cx: ScanCx, F: Node<'scan'>, dH: number): void {
  const a = F.attrs;
  const { body, stateSize: S } = a;
  const first = 2 + (a.init ? 1 : 0);
  const span = F.span;
  const L = (what: string) => `${F.label}.${what}`;
  const bb = cx.b.body();

  // --- the stacked step input, built as segments are asked for
  const segments: (() => number)[] = [];
  const outsideOf = new Map<number, () => number>();
  let stepNode: number | undefined;
  let width = 0;
  const segment = (w: number, make: () => number, label: string): number => {
    // the step's width is known once every segment is: open (any slice fits) until then, set below
    stepNode ??= bb.step(Number.MAX_SAFE_INTEGER, span, L('backward step'));
    const sl = bb.slice(stepNode, width, w, span, label);
    width += w;
    let made: number | undefined;
    const outer = () => (made ??= make());
    segments.push(outer);
    outsideOf.set(sl, outer);
    return sl;
  };
  const dHt = segment(S, () => dH, L('dH[t]'));

  // --- the forward body's values, recomputed or read from the step input
  const perStep = perStepValues(body);
  const keepable = (n: Node) => cx.policy === 'dots' && (n.op === 'matmul' || n.op === 'einsum') && perStep.has(n.id) && n.shape.length === 2 && typeof n.shape[1] === 'number';
  const memo = new Map<number, number>();
  const primal = (id: number): number => {
    const known = memo.get(id);
    if (known !== undefined) return known;
    const n = body.get(id);
    let v: number;
    if (n.op === 'state') v = segment(S, () => cx.b.shift(cx.primal(F.id), a.init ? cx.primal(F.inputs[2]) : undefined, a.reverse, span, L('s[t-1]')), L('s[t-1]'));
    else if (n.op === 'step') v = segment(n.shape[1] as number, () => cx.primal(F.inputs[0]), L('x[t]'));
    else if (n.op === 'capture') v = bb.capture(cx.b, cx.primal(F.inputs[first + (n.attrs as OpAttrs['capture']).input]));
    else if (n.op === 'param') v = bb.param((n.attrs as OpAttrs['param']).name, n.shape as number[], (n.attrs as OpAttrs['param']).layer, n.span);
    else if (n.op === 'scan') throw new Error(`internal: a scan inside a scan body (%${n.id})`);
    else if (keepable(n)) v = segment(n.shape[1] as number, () => cx.primal(cx.keep(F, id)), `${n.label} (kept)`);
    else v = bb.raw(n.op as 'slice', n.inputs.map(primal), { ...(n.attrs as OpAttrs['slice']) }, n.shape, n.span, n.label, n.dtype);
    memo.set(id, v);
    return v;
  };

  // --- the body's reverse sweep
  const terms: Deferred[] = [];
  const sweep = new Sweep(body, bb, { primal, ...bodyHooks(cx, F), defer: (d) => terms.push(d) });
  const next = body.outputs[0].node;
  sweep.seed(next, bb.binary('add', bb.state(S, span, L('d state')), dHt, span, L('d next')));
  sweep.run();
  const stateNode = body.ordered().find((n) => n.op === 'state');
  const dPrev = (stateNode && sweep.total(stateNode.id)) ?? bb.broadcast(bb.constant(0, span), ['B', S], span, L('d state'));
  bb.g.outputs = [{ name: 'next', node: dPrev }];
  const stepIn = body.ordered().find((n) => n.op === 'step');
  let dStep = stepIn && cx.active(F.inputs[0]) ? sweep.total(stepIn.id) : undefined;
  if (dStep !== undefined) {
    // the same value computed twice in the body (an LSTM's d(x·Wᵀ[t]) is its d(h·W_hhᵀ)) is one node, so one kernel computes it
    const d = dStep;
    const first = bb.g.ordered().find((n) => sameValue(bb.g, n.id, d))!.id;
    if (first !== d) bb.g.replaceUses(d, first);
    dStep = first;
    bb.g.outputs.push({ name: 'dx', node: dStep });
  }

  // --- how each deferred operand is read outside: already stacked outside, or a stacked body output
  const emitted = new Map<number, string>();
  const emit = (v: number): Outside => {
    // the step input's gradient is often the same value (an LSTM's d(x·Wᵀ[t]) is d(h·W_hhᵀ)): kept once
    if (dStep !== undefined && sameValue(bb.g, v, dStep)) return { emit: 'dx' };
    let name = emitted.get(v);
    if (!name) {
      name = `o${emitted.size}`;
      emitted.set(v, name);
      bb.g.outputs.push({ name, node: v });
    }
    return { emit: name };
  };
  const outside = (v: number): Outside | undefined => {
    const n = bb.node(v);
    const seg = outsideOf.get(v);
    if (seg) return v === dHt ? undefined : { perStep: true, make: seg };
    if (n.op === 'param' || n.op === 'rows' || n.op === 'cols') return { perStep: false, make: () => copyWeight(cx.b, bb, v) };
    if (n.op === 'capture') return { perStep: false, make: () => bb.captured[(n.attrs as OpAttrs['capture']).input] };
    if (n.op === 'slice') {
      const inner = outside(n.inputs[0]);
      if (inner && 'make' in inner && inner.perStep) {
        const { start, count } = n.attrs as OpAttrs['slice'];
        return { perStep: true, make: () => cx.b.slice(inner.make(), start, count, span, n.label) };
      }
    }
    return undefined;
  };
  const plans = terms.map((t) => {
    const reads = t.operands.map((o) => outside(o.node) ?? emit(o.node));
    // at least one operand must be 0 at padded steps: a stacked body output
    if (!reads.some((r) => 'emit' in r)) {
      const k = reads.findIndex((r) => 'perStep' in r && r.perStep);
      if (k < 0) throw new Error(`internal: a deferred contribution in ${F.label} with no per-step operand`);
      reads[k] = emit(t.operands[k].node);
    }
    return reads;
  });

  bb.g.prune();

  // --- the backward scan
  const outer = segments.map((s) => s());
  const steps = outer.slice(1).reduce((acc, x) => cx.b.concat(acc, x, span, L('backward steps')), outer[0]);
  bb.g.get(stepNode!).shape = ['B', width];
  const lengths = cx.primal(F.inputs[1]);
  const back = cx.b.scan(steps, lengths, undefined, bb.captured, { reverse: !a.reverse, cell: a.cell, body: bb.g, stateSize: S }, span, L('backward'));
  const stackedBy = new Map<string, number>();
  const stacked = (name: string) => {
    let n = stackedBy.get(name);
    if (n === undefined) stackedBy.set(name, (n = cx.b.stacked(back, name, bb.shape(bb.g.outputs.find((o) => o.name === name)!.node), span, L(name))));
    return n;
  };
  if (dStep !== undefined) cx.give(F, 0, stacked('dx'));
  if (a.init && cx.active(F.inputs[2])) cx.give(F, 2, cx.b.pool(back, lengths, 'first', undefined, span, L('d init')));

  // --- the deferred contributions, each one contraction over every step
  const cache = new Map<string, number>();
  terms.forEach((t, k) => {
    const time = freeLetter(t);
    const operands = t.operands.map((o, j) => {
      const r = plans[k][j];
      const key = 'emit' in r ? `emit:${r.emit}` : `${o.node}`;
      let node = cache.get(key);
      if (node === undefined) {
        node = 'emit' in r ? stacked(r.emit) : r.make();
        cache.set(key, node);
      }
      const perStepOp = 'emit' in r || r.perStep;
      return { node, letters: perStepOp ? o.letters[0] + time + o.letters.slice(1) : o.letters };
    });
    settle(cx, F, t, operands);
  });
}

/** Whether nodes a and b of `g` compute the same value: one node, or the same op and attributes on the same values. */
function sameValue(g: Graph, a: number, b: number): boolean {
  if (a === b) return true;
  const x = g.get(a);
  const y = g.get(b);
  if (x.op !== y.op || OP_TABLE[x.op].fusion === 'source' || x.inputs.length !== y.inputs.length) return false;
  if (JSON.stringify(x.attrs) !== JSON.stringify(y.attrs) || x.shape.join() !== y.shape.join()) return false;
  return x.inputs.every((i, k) => sameValue(g, i, y.inputs[k]!));
}

/** The body values that vary per step: what depends on the state, the step input or a capture. */
export function perStepValues(body: Graph): Set<number> {
  const perStep = new Set<number>();
  for (const n of body.ordered()) if (n.op === 'state' || n.op === 'step' || n.op === 'capture' || n.inputs.some((i) => perStep.has(i))) perStep.add(n.id);
  return perStep;
}

const WEIGHT = new Set(['param', 'rows', 'cols']);

/** The body sweep's activity (what carries a gradient) and its deferred leaves: weight views and captures. */
export function bodyHooks(cx: ScanCx, F: Node<'scan'>): { active(id: number): boolean; defers(id: number): boolean } {
  const { body, init } = F.attrs;
  const first = 2 + (init ? 1 : 0);
  const perStep = perStepValues(body);
  const active = new Set<number>();
  for (const n of body.ordered()) {
    const on =
      n.op === 'state' || n.op === 'param' ? true
      : n.op === 'step' ? cx.active(F.inputs[0])
      : n.op === 'capture' ? cx.active(F.inputs[first + (n.attrs as OpAttrs['capture']).input])
      : n.inputs.some((i) => active.has(i));
    if (on) active.add(n.id);
    if (on && !perStep.has(n.id) && !WEIGHT.has(n.op)) throw new Error(`internal: reverse mode of a scan body value computed from weights alone (%${n.id} ${n.op})`);
  }
  return { active: (id) => active.has(id), defers: (id) => WEIGHT.has(body.get(id).op) || body.get(id).op === 'capture' };
}

/** A deferred contribution's contraction over all steps (operands already read outside), given to its weight or captured value. */
export function settle(cx: ScanCx, F: Node<'scan'>, t: Deferred, operands: readonly Operand[]): void {
  const { body, init } = F.attrs;
  const target = body.get(t.target);
  const value = contract(cx.b, { operands, out: t.out, scale: t.scale }, target.shape, F.span, `d(${target.label})`);
  if (target.op === 'capture') cx.give(F, 2 + (init ? 1 : 0) + (target.attrs as OpAttrs['capture']).input, value);
  else toWeight(cx, body, target, value);
}

/** A letter none of a contraction's operands or its result uses. */
export function freeLetter(t: Contraction, avoid = ''): string {
  const used = new Set([...t.operands.flatMap((o) => [...o.letters]), ...t.out, ...avoid]);
  return [...'lmnopqrstuvwxyzabcdefghijk'].find((c) => !used.has(c))!;
}

/** A body weight view's contribution, zero-padded back up its chain of rows / cols to the weight. */
function toWeight(cx: ScanCx, body: { get(id: number): Node }, n: Node, value: number): void {
  let v = value;
  let at = n;
  while (at.op === 'rows' || at.op === 'cols') {
    const src = body.get(at.inputs[0]);
    const axis = at.op === 'rows' ? 0 : 1;
    v = cx.b.pad(v, axis, (at.attrs as OpAttrs['rows']).start, src.shape[axis] as number, at.span, `d(${src.label})`);
    at = src;
  }
  cx.weight((at.attrs as OpAttrs['param']).name, v);
}

/** A backward body's weight view (param, rows / cols of one) rebuilt in the outer backward graph. */
export function copyWeight(outer: Builder, bb: Builder, v: number): number {
  const n = bb.node(v);
  if (n.op === 'param') {
    const a = n.attrs as OpAttrs['param'];
    return outer.param(a.name, n.shape as number[], a.layer, n.span);
  }
  return outer.raw(n.op, [copyWeight(outer, bb, n.inputs[0])], { ...n.attrs }, n.shape as Shape, n.span, n.label);
}
