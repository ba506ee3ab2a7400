/**
 * The plan builder: lowered calls (lower.ts) → the runtime's typed Plan (src/runtime/plan.ts) and
 * the model's kernel table.
 *
 * - Kernels are identified by their structure (kir.ts kernelKey): calls of the same kernel on
 *   different buffers share one table entry (a 96-block Transformer's blocks share theirs).
 * - Buffers become slots, the weights first in load order.
 * - Liveness (ONNX Runtime's allocation planner, TVM's GraphPlanMemory): every buffer the plan
 *   makes is released right after its last use (`free` on that instruction); forward keeps only
 *   its output. Scan bodies' buffers live for one step.
 * - The encoder/decoder split follows passes/generate.ts (nodes that depend on the generated
 *   input), and whether the model can generate is what expand decided (ModelIR.generate); a model
 *   that can generate gets a GenPlan saying what a decoding step reads from the encoder part, what
 *   it carries to the next step and what it keeps.
 * - The weight blocks the host GEMMs read are listed once (Plan.packs) and packed at load.
 */
import type { Graph, Node } from '../ir/graph.ts';
import type { ModelIR } from '../ir/model.ts';
import type { OpAttrs } from '../ir/ops.ts';
import type { GenPlan, Instr, Plan, PlanCache, PlanFeed, PlanInput, RunInstr, ScanInstr, Size, Slot, TrainPlan } from '../runtime/plan.ts';
import { generatedNodes } from '../passes/generate.ts';
import { kernelKey, type Kernel } from './kir.ts';
import { lowerGraph, nodeBuf, weightBuf, type BufKey, type Call, type HostNotes, type LoweredInstr } from './lower.ts';

export interface Program {
  /** The kernel table: each distinct kernel once (the forward's first, then those only training calls). */
  readonly kernels: readonly Kernel[];
  /** How many of them the forward's plan calls (the first ones). */
  readonly forwardKernels: number;
  /** Per kernel: the labels of the IR nodes it computes, in call order. */
  readonly labels: readonly (readonly string[])[];
  readonly plan: Plan;
  /** The training program's plans (vjp and nnc/train), on the same kernel table. */
  readonly train?: TrainPlan;
  /** Per kernel root id: how the host backends run it (shown by --emit=ir-opt). */
  readonly notes: HostNotes;
  /** The same for the backward graph's kernels (shown by --emit=ir-grad; its node ids are its own). */
  readonly backwardNotes?: HostNotes;
}

/** Reverse mode's two graphs (src/passes/grad), each fused: the training forward and the backward. */
export interface TrainGraphs {
  readonly forward: ModelIR;
  readonly backward: ModelIR;
}

/**
 * The model's program: its forward plan and, given its training graphs, the training plans, all on
 * one kernel table (a kernel the forward and training both call is rendered once).
 */
export function compileProgram(model: ModelIR, training?: TrainGraphs): Program {
  const notes: HostNotes = new Map();
  const table = new KernelTable();
  const plan = new PlanBuilder(model, table).build(lowerGraph(model.graph, notes));
  const forwardKernels = table.kernels.length;
  const trainPlan = (m: ModelIR, into: HostNotes) => new PlanBuilder(m, table).build(lowerGraph(m.graph, into), true);
  const backwardNotes: HostNotes = new Map();
  const train = training ? { forward: trainPlan(training.forward, new Map()), backward: trainPlan(training.backward, backwardNotes) } : undefined;
  return { kernels: table.kernels, forwardKernels, labels: table.labels, plan, ...(train ? { train, backwardNotes } : {}), notes };
}

/** Each distinct kernel once (by its structure), with the labels of its calls. */
class KernelTable {
  readonly kernels: Kernel[] = [];
  readonly labels: string[][] = [];
  private readonly index = new Map<string, number>();

  add(k: Kernel, label: string): number {
    const key = kernelKey(k);
    let i = this.index.get(key);
    if (i === undefined) {
      i = this.kernels.push(k) - 1;
      this.labels.push([]);
      this.index.set(key, i);
    }
    this.labels[i]!.push(label);
    return i;
  }
}

class PlanBuilder {
  private readonly slots = new Map<BufKey, Slot>();
  private readonly shapes = new Map<Slot, Size>();
  private readonly packs: (readonly [Slot, number, number, number, number, number])[] = [];
  private readonly packIndex = new Map<string, number>();
  private readonly packSets: number[][] = [];
  private readonly packSetIndex = new Map<string, number>();
  private readonly g: Graph;

  constructor(private readonly model: ModelIR, private readonly table: KernelTable) {
    this.g = model.graph;
  }

  private slot(key: BufKey, shape?: Size): Slot {
    let s = this.slots.get(key);
    if (s === undefined) this.slots.set(key, (s = this.slots.size));
    if (shape && !this.shapes.has(s)) this.shapes.set(s, shape);
    return s;
  }
  private nodeSlot(n: Node): Slot {
    return this.slot(nodeBuf(n.id), [...n.shape]);
  }

  private kernel(k: Kernel, label: string): number {
    return this.table.add(k, label);
  }

  /** The call's weight blocks as a pack set (an index in Plan.packSets), when it has any. */
  private packSet(c: Call): number | undefined {
    if (!c.packs.length) return undefined;
    const ids = c.packs.map((p) => {
      const spec = [this.slot(weightBuf(p.weight)), p.off, p.n, p.k, p.sn, p.sk] as const;
      const key = spec.join(',');
      let i = this.packIndex.get(key);
      if (i === undefined) this.packIndex.set(key, (i = this.packs.push(spec) - 1));
      return i;
    });
    const key = ids.join(',');
    let s = this.packSetIndex.get(key);
    if (s === undefined) this.packSetIndex.set(key, (s = this.packSets.push(ids) - 1));
    return s;
  }

  private run(c: Call): RunInstr {
    const packs = this.packSet(c);
    return { op: 'run', kernel: this.kernel(c.kernel, c.label), out: this.slot(c.out, c.size), args: c.args.map((a) => this.slot(a)), size: c.size, ...(packs !== undefined ? { packs } : {}), ...(c.weightsOnly ? { weights: true as const } : {}) };
  }

  private instr(i: LoweredInstr): Instr {
    if (i.op === 'run') return this.run(i.call);
    const out = this.slot(i.out, i.size);
    const body = i.body.map((c) => this.run(c));
    const packs = this.packSet(i.step);
    const exports = Object.values(i.exports).map((k) => this.slot(k));
    const stacks = i.stacks.map((x) => ({ from: this.slot(x.from), to: this.slot(x.to), width: x.width }));
    const scan: ScanInstr = {
      op: 'scan', out, dim: i.dim, reverse: i.reverse, stateSize: i.stateSize,
      ...(i.init ? { init: this.slot(i.init) } : {}), lengths: this.slot(i.lengths), body,
      step: { kernel: this.kernel(i.step.kernel, i.step.label), args: i.step.args.map((a) => this.slot(a)), ...(packs !== undefined ? { packs } : {}) },
      size: i.size, ...(exports.length ? { exports } : {}), ...(stacks.length ? { stacks } : {}),
    };
    return scan;
  }

  /** The plan; `train`: a training graph's (one part, every output kept, its feeds listed, no generation). */
  build(lowered: readonly LoweredInstr[], train = false): Plan {
    const { model, g } = this;
    // weights first, in load order; then the runtime's tables, the inputs and the caches
    for (const w of model.weights) this.slot(weightBuf(w.name), w.shape);
    const nodes = g.ordered();
    const tables = nodes.filter((n) => n.op === 'sin_freqs').map((n) => ({ slot: this.nodeSlot(n), kind: 'sin_freqs' as const, dim: (n.attrs as OpAttrs['sin_freqs']).dim }));
    const find = (op: string, input: string) => nodes.find((n) => n.op === op && (n.op === 'input' ? (n.attrs as OpAttrs['input']).name : (n.attrs as OpAttrs['lengths']).input) === input);
    const inputs: PlanInput[] = model.inputs.map((inp) => {
      const entry: Record<string, unknown> = { name: inp.name, dim: inp.time };
      for (const [field, op] of [['data', 'input'], ['lengths', 'lengths'], ['offsets', 'pos_offsets'], ['keyLengths', 'key_lengths']] as const) {
        const n = find(op, inp.name);
        if (n) entry[field] = this.nodeSlot(n);
      }
      return entry as unknown as PlanInput;
    });
    const caches: PlanCache[] = nodes.filter((n) => n.op === 'time_concat').map((n) => ({ cache: this.nodeSlot(g.get(n.inputs[0]!)), next: this.nodeSlot(n), width: n.shape[2] as number }));
    const instrs = lowered.map((i) => ({ instr: this.instr(i), root: i.op === 'run' ? i.call.root : i.root }));
    const outNode = g.get(g.outputs[0]!.node);
    const output = { slot: this.nodeSlot(outNode), shape: [...outNode.shape] };

    // the decoder part: what depends on the generated input (for a language model, everything)
    const genInput = model.inputs[model.inputs.length - 1]!;
    const seq2seq = model.inputs.length > 1;
    const gen = generatedNodes(g, genInput.name);
    const isDecode = (i: { root: number }) => train || !seq2seq || gen.has(i.root);
    const encode = instrs.filter((i) => !isDecode(i)).map((i) => i.instr);
    const decodeRooted = instrs.filter(isDecode);
    const decode = decodeRooted.map((i) => i.instr);

    const genPlan = model.generate.ok && !train ? this.genPlan(encode, decodeRooted, inputs, caches, output.slot) : undefined;
    // liveness over forward's order: inputs and caches are made before the first instruction
    const made = new Set<Slot>();
    for (const i of inputs) for (const s of [i.data, i.lengths, i.offsets, i.keyLengths]) if (s !== undefined) made.add(s);
    for (const c of caches) made.add(c.cache);
    const outputs = g.outputs.map((o) => ({ name: o.name, slot: this.nodeSlot(g.get(o.node)), shape: [...g.get(o.node).shape] }));
    const feeds: PlanFeed[] = [];
    for (const n of nodes) {
      const slot = this.nodeSlot(n);
      if (n.op === 'saved') feeds.push({ kind: 'saved', name: (n.attrs as OpAttrs['saved']).name, slot, shape: [...n.shape] });
      else if (n.op === 'cotangent') feeds.push({ kind: 'cotangent', name: (n.attrs as OpAttrs['cotangent']).output, slot, shape: [...n.shape] });
      else if (n.op === 'dropout_mask') feeds.push({ kind: 'dropout', ...(n.attrs as OpAttrs['dropout_mask']), slot, shape: [...n.shape] });
      else continue;
      made.add(slot);
    }
    const all = [...encode, ...decode];
    const freed = liveness(all, made, new Set(train ? outputs.map((o) => o.slot) : [output.slot]));
    const withFree = (list: readonly Instr[], from: number) => list.map((ins, k) => (freed[from + k]!.length ? { ...ins, free: freed[from + k]! } : ins));

    const plan: Plan = {
      slots: this.slots.size,
      weights: model.weights.length,
      ...(tables.length ? { tables } : {}),
      ...(this.packs.length ? { packs: this.packs, packSets: this.packSets } : {}),
      inputs,
      encode: withFree(encode, 0),
      decode: withFree(decode, encode.length),
      output,
      caches,
      ...(genPlan ? { gen: genPlan } : model.generate.ok || train ? {} : { noGen: `${model.generate.reason} (to generate: ${model.generate.suggestion})` }),
      ...(train ? { outputs, feeds } : {}),
    };
    return plan;
  }

  /** How generate() drives the model: what the decoder part reads from the encoder part, carries and keeps. */
  private genPlan(encode: readonly Instr[], rooted: readonly { instr: Instr; root: number }[], inputs: readonly PlanInput[], caches: readonly PlanCache[], output: Slot): GenPlan {
    const { model, g } = this;
    const decode = rooted.map((i) => i.instr);
    const seq2seq = model.inputs.length > 1;
    const gi = inputs[inputs.length - 1]!;
    // what the decoder part reads from the encoder part and the source input
    const fromEncoder = new Set<Slot>(encode.flatMap(defs));
    if (seq2seq) for (const s of [inputs[0]!.data, inputs[0]!.lengths, inputs[0]!.offsets, inputs[0]!.keyLengths]) if (s !== undefined) fromEncoder.add(s);
    const captures: GenPlan['captures'][number][] = [];
    for (const i of decode) for (const r of reads(i)) if (fromEncoder.has(r) && !captures.some((c) => c.slot === r)) captures.push({ slot: r, shape: this.shapes.get(r)! });
    const carries = decode.filter((i): i is ScanInstr => i.op === 'scan').map((s) => ({ scan: s.out, stateSize: s.stateSize }));
    // the last attention layer's weights in the decoder part: a graph output named 'attention' (after
    // the recurrence, Luong) or a scan body's export of that name (inside it, Bahdanau)
    const outer = new Set(g.outputs.filter((o) => o.name === 'attention').map((o) => this.slot(nodeBuf(o.node))));
    let attention: Slot | undefined;
    for (const { instr: i, root } of rooted) {
      if (i.op === 'scan') {
        const exp = (g.get(root).attrs as OpAttrs['scan']).body.outputs.find((o) => o.name === 'attention');
        if (exp) attention = this.slot(nodeBuf(exp.node));
      } else if (outer.has(i.out)) attention = i.out;
    }
    const out = g.get(g.outputs[0]!.node);
    // the distribution: what the output is before the final padding mask
    const pre = out.op === 'mask' ? g.get(out.inputs[0]!) : out;
    const readout = pre.op === 'softmax' ? ((pre.attrs as OpAttrs['softmax']).log ? 'logprob' : 'prob') : 'logits';
    // a learned positional table (gather of a weight by positions) covers only its rows
    const tables = g.ordered().filter((n) => n.op === 'gather' && g.get(n.inputs[1]!).op === 'positions').map((n) => g.get(n.inputs[0]!).shape[0] as number);
    const keep = new Set<Slot>([output, ...captures.map((c) => c.slot), ...carries.map((c) => c.scan), ...caches.flatMap((c) => [c.cache, c.next])]);
    if (attention !== undefined) keep.add(attention);
    if (gi.keyLengths !== undefined) keep.add(gi.keyLengths);
    const inp = model.inputs[model.inputs.length - 1]!;
    return {
      input: model.inputs.length - 1, seq2seq, captures, carries,
      ...(attention !== undefined ? { attention } : {
        noAttention: caches.length
          ? `${model.name}'s causal self-attention weights are not reported (attention: true returns a seq2seq decoder's attention over its source)`
          : `${model.name} has no attention over a source to report`,
      }),
      readout,
      ...(tables.length ? { maxPositions: Math.min(...tables) } : {}),
      vocab: out.shape[out.shape.length - 1] as number,
      inputVocab: inp.vocab!,
      keep: [...keep].sort((a, b) => a - b),
    };
  }

}

/** Slots an instruction reads from outside itself (a scan's own history and its body's buffers are its own). */
function reads(i: Instr): Slot[] {
  if (i.op === 'run') return [...i.args];
  const own = new Set<Slot>([i.out, ...i.body.map((b) => b.out)]);
  const r = [...(i.init !== undefined ? [i.init] : []), i.lengths, ...i.step.args, ...i.body.flatMap((b) => b.args)];
  return r.filter((s) => !own.has(s));
}

/** Slots an instruction makes that outlive it. */
function defs(i: Instr): Slot[] {
  return i.op === 'run' ? [i.out] : [i.out, ...(i.exports ?? []), ...(i.stacks ?? []).map((x) => x.to)];
}

/**
 * Per instruction, the slots whose last use it is (or which it makes and nothing reads), among
 * those the run makes: `made` before the first instruction (inputs) and each instruction's
 * results; weights and tables are the model's, never released by a run. `kept` outlive the run.
 */
function liveness(instrs: readonly Instr[], made: ReadonlySet<Slot>, kept: ReadonlySet<Slot>): Slot[][] {
  const last = new Map<Slot, number>();
  const owned = new Set(made);
  for (const s of made) last.set(s, 0);
  instrs.forEach((ins, k) => {
    for (const r of reads(ins)) if (owned.has(r)) last.set(r, k);
    for (const d of defs(ins)) {
      owned.add(d);
      if (!last.has(d)) last.set(d, k);
    }
  });
  const free: Slot[][] = instrs.map(() => []);
  for (const [s, k] of last) if (!kept.has(s)) free[k]!.push(s);
  for (const f of free) f.sort((a, b) => a - b);
  return free;
}
