/**
 * The transpose of a scan with recomputation (`GradOptions.checkpoint = k`): the training forward
 * keeps only the state every k steps (`every` of the shifted history: [B, T/k, S], T/k = ⌈T / k⌉),
 * not the history nor any body value, so what a recurrence itself keeps grows as O(T / k). The
 * backward is a scan over segments of k steps, running the other way, whose body
 *
 *   1. recomputes the segment's k forward steps from its checkpoint (the forward body, unrolled k
 *      times; a padded step leaves the state as it is: s' = m·body(s, x) + (1 − m)·s with m the
 *      step's 0/1 validity, read from the stacked input like dH and x), then
 *   2. runs the body's reverse sweep for each of them, last first, carrying the state's cotangent.
 *
 * Its step input is a segment row [dH (k·S) | x (k·Dx) | m (k) | checkpoint (S)], cut from the
 * sequences by `segments`; the step inputs' cotangents come back as one stacked output
 * [B, T/k, k·Dx] (`unsegment` restores [B, T, Dx]). As in scan.ts, what weights and captured values
 * receive is deferred: each deferred operand is stacked over the k copies and the segments
 * ([B, T/k, …, k, X] after a head split), so every weight's gradient is still one contraction over
 * all steps outside the loop. The outer scan runs over T/k segments with the rows' lengths in steps
 * as its lengths: every segment holding a valid step is visited (⌈len / k⌉ ≤ len), and a visited
 * segment past the end is all padding, which changes nothing.
 */
import type { Node } from '../../ir/graph.ts';
import type { OpAttrs } from '../../ir/ops.ts';
import { bodyHooks, copyWeight, freeLetter, settle, type ScanCx } from './scan.ts';
import { Sweep, type Deferred, type Operand } from './sweep.ts';

export function transposeScanCheckpointed(cx: ScanCx, F: Node<'scan'>, dH: number, k: number): void {
  const a = F.attrs;
  const { body, stateSize: S } = a;
  const first = 2 + (a.init ? 1 : 0);
  const span = F.span;
  const L = (what: string) => `${F.label}.${what}`;
  const stepIn = body.ordered().find((n) => n.op === 'step');
  const stateIn = body.ordered().find((n) => n.op === 'state');
  const Dx = stepIn ? (stepIn.shape[1] as number) : 0;
  const bb = cx.b.body();

  // --- a segment row of the stacked input
  const row = bb.step(k * (S + Dx + 1) + S, span, L('segment'));
  const part = (start: number, count: number, label: string) => bb.slice(row, start, count, span, L(label));
  const dHat = (i: number) => part(i * S, S, `dH[${i}]`);
  const xAt = (i: number) => part(k * S + i * Dx, Dx, `x[${i}]`);
  const mAt = (i: number) => part(k * (S + Dx) + i, 1, `valid[${i}]`);
  const checkpoint = part(k * (S + Dx + 1), S, 'checkpoint');

  // --- 1. recompute the segment's steps, in the forward's order
  const order = [...Array(k).keys()];
  if (a.reverse) order.reverse();
  const shared = new Map<number, number>();
  const copies: { primal(id: number): number; pos: number; m: number }[] = [];
  let s = checkpoint;
  for (const pos of order) {
    const memo = new Map<number, number>();
    const m = mAt(pos);
    const sIn = s;
    const primal = (id: number): number => {
      const known = memo.get(id) ?? shared.get(id);
      if (known !== undefined) return known;
      const n = body.get(id);
      let v: number;
      let once = false;
      if (n.op === 'state') v = sIn;
      else if (n.op === 'step') v = xAt(pos);
      else if (n.op === 'capture') [v, once] = [bb.capture(cx.b, cx.primal(F.inputs[first + (n.attrs as OpAttrs['capture']).input])), true];
      else if (n.op === 'param') [v, once] = [bb.param((n.attrs as OpAttrs['param']).name, n.shape as number[], (n.attrs as OpAttrs['param']).layer, n.span), true];
      else if (n.op === 'scan') throw new Error(`internal: a scan inside a scan body (%${n.id})`);
      else v = bb.raw(n.op as 'slice', n.inputs.map(primal), { ...(n.attrs as OpAttrs['slice']) }, n.shape, n.span, n.label, n.dtype);
      (once ? shared : memo).set(id, v);
      return v;
    };
    const next = primal(body.outputs[0].node);
    const keep = bb.binary('mul', bb.unary('one_minus', m, span, L('padded')), sIn, span, L('state kept'));
    s = bb.binary('add', bb.binary('mul', m, next, span, L('state updated')), keep, span, L(`s[${pos}]`));
    copies.push({ primal, pos, m });
  }

  // --- 2. the reverse sweeps, last step first
  const hooks = bodyHooks(cx, F);
  let carry = bb.state(S, span, L('d state'));
  const dx = new Map<number, number>();
  const terms: Deferred[][] = [];
  for (const { primal, pos, m } of [...copies].reverse()) {
    const g = bb.binary('add', carry, bb.binary('mul', m, dHat(pos), span, L('dH')), span, L('d state after'));
    const list: Deferred[] = [];
    const sweep = new Sweep(body, bb, { primal, ...hooks, defer: (d) => list.push(d) });
    sweep.seed(body.outputs[0].node, bb.binary('mul', m, g, span, L('d next')));
    sweep.run();
    const passed = bb.binary('mul', bb.unary('one_minus', m, span, L('padded')), g, span, L('d state kept'));
    const dState = stateIn && sweep.total(stateIn.id);
    carry = dState === undefined ? passed : bb.binary('add', passed, dState, span, L('d state before'));
    const dStep = stepIn && cx.active(F.inputs[0]) ? sweep.total(stepIn.id) : undefined;
    if (dStep !== undefined) dx.set(pos, dStep);
    terms.push(list);
  }
  bb.g.outputs = [{ name: 'next', node: carry }];
  if (dx.size) {
    const parts = [...Array(k).keys()].map((i) => dx.get(i) ?? bb.broadcast(bb.constant(0, span), ['B', Dx], span, L('dx')));
    bb.g.outputs.push({ name: 'dx', node: parts.slice(1).reduce((acc, v) => bb.concat(acc, v, span, L('dx')), parts[0]) });
  }

  // deferred operands: weights and captures read outside as they are; per-step values stacked over the k copies
  const base = terms[0];
  if (terms.some((l) => l.length !== base.length || l.some((t, j) => t.target !== base[j].target || t.out !== base[j].out))) throw new Error(`internal: the unrolled steps of ${F.label} defer different contributions`);
  const letters = base.map((t) => {
    const seg = freeLetter(t);
    const pos = freeLetter(t, seg);
    return { seg, pos, wide: freeLetter(t, seg + pos) };
  });
  const plans = base.map((t, j) =>
    t.operands.map((o, slot): Plan => {
      const n = bb.node(o.node);
      if (n.op === 'param' || n.op === 'rows' || n.op === 'cols') return { outer: () => copyWeight(cx.b, bb, o.node), letters: o.letters };
      if (n.op === 'capture') return { outer: () => bb.captured[(n.attrs as OpAttrs['capture']).input], letters: o.letters };
      // each copy's value, as [B, …, X] (a rank-1 [B] value gains a size-1 axis)
      const widen = (v: number) => (bb.shape(v).length === 1 ? bb.unsqueeze(v, 1, span, L('widened')) : v);
      const values = terms.map((l) => widen(l[j].operands[slot].node));
      const name = `o${j}_${slot}`;
      const wide = o.letters.length === 1 ? o.letters + letters[j].wide : o.letters;
      // side by side on the last axis when it has a size (split again outside), else one output per copy
      if (typeof bb.shape(values[0]).at(-1) !== 'number') {
        values.forEach((v, p) => bb.g.outputs.push({ name: `${name}_${p}`, node: v }));
        return { emitEach: name, letters: wide };
      }
      bb.g.outputs.push({ name, node: values.slice(1).reduce((acc, v) => bb.concat(acc, v, span, L(name)), values[0]) });
      return { emit: name, letters: wide };
    }),
  );
  bb.g.prune();

  // --- the outer scan over segments
  const b = cx.b;
  const lengths = cx.primal(F.inputs[1]);
  const time = b.shape(dH)[1];
  const valid = b.mask(b.broadcast(b.constant(1, span), ['B', time, 1], span, L('valid')), lengths, span, L('valid'));
  // the history's cotangent is read as m·dH: padded steps' values (anything, even NaN) are zeroed first
  const dHvalid = b.mask(dH, lengths, span, L('dH (valid steps)'));
  const rows = [b.segments(dHvalid, k, span, L('dH segments')), ...(Dx ? [b.segments(cx.primal(F.inputs[0]), k, span, L('x segments'))] : []), b.segments(valid, k, span, L('valid segments')), cx.primal(cx.checkpoints(F, k))];
  const steps = rows.slice(1).reduce((acc, v) => b.concat(acc, v, span, L('segment rows')), rows[0]);
  const back = b.scan(steps, lengths, undefined, bb.captured, { reverse: !a.reverse, cell: a.cell, body: bb.g, stateSize: S }, span, L('backward (recomputed)'));
  // one stacked node per body output (a deferred operand's output is read once per unrolled copy)
  const stackedBy = new Map<string, number>();
  const stacked = (name: string): number => {
    let id = stackedBy.get(name);
    if (id === undefined) stackedBy.set(name, (id = b.stacked(back, name, bb.shape(bb.g.outputs.find((o) => o.name === name)!.node), span, L(name))));
    return id;
  };
  if (dx.size) cx.give(F, 0, b.unsegment(stacked('dx'), k, span, L('dx')));
  if (a.init && cx.active(F.inputs[2])) cx.give(F, 2, b.pool(back, lengths, 'first', undefined, span, L('d init')));
  base.forEach((t, j) => {
    const { seg, pos } = letters[j];
    const plan = plans[j];
    const outside = (p: Plan, copy: number): Operand => {
      if ('outer' in p) return { node: p.outer(), letters: p.letters };
      if ('emitEach' in p) return { node: stacked(`${p.emitEach}_${copy}`), letters: p.letters[0] + seg + p.letters.slice(1) };
      // [B, T/k, …, k·X] → [B, T/k, …, k, X]
      const split = b.splitHeads(stacked(p.emit), k, span, L(`${p.emit} by step`));
      return { node: split, letters: p.letters[0] + seg + p.letters.slice(1, -1) + pos + p.letters.slice(-1) };
    };
    /** A copy's part of a side-by-side output: [B, T/k, …, X]. */
    const part = (p: { emit: string; letters: string }, copy: number): Operand => {
      const v = stacked(p.emit);
      const w = (b.shape(v).at(-1) as number) / k;
      return { node: b.slice(v, copy * w, w, span, L(`${p.emit}[${copy}]`)), letters: p.letters[0] + seg + p.letters.slice(1) };
    };
    // one contraction over segments and the steps within them; k of them when a value's width is symbolic
    const copiesApart = plan.some((p) => 'emitEach' in p);
    for (let copy = 0; copy < (copiesApart ? k : 1); copy++) {
      settle(cx, F, t, plan.map((p) => (copiesApart && 'emit' in p ? part(p, copy) : outside(p, copy))));
    }
  });
}

type Plan = { outer: () => number; letters: string } | { emit: string; letters: string } | { emitEach: string; letters: string };
