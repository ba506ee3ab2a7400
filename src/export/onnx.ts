/**
 * `nnc onnx`: a model's expanded IR (the core-op graph, before the optimisation passes) → ONNX
 * graphs (opset 17), encoded by protobufjs from ONNX's schema (onnx-proto.ts). docs/onnx.md has the
 * whole mapping; in short:
 *
 * - every core op maps to stock ONNX ops (matmul → MatMul/Gemm, einsum → Einsum, layernorm →
 *   LayerNormalization, masked softmax → Softmax over scores plus a 0 / −∞ mask, gelu → its erf
 *   form, Erf being opset 17's, pool → GatherND / ReduceSum / ReduceMax over valid steps, …);
 * - a recurrence whose body is exactly a stock PyTorch cell becomes ONNX's own LSTM / GRU / RNN
 *   (gate blocks reordered to iofc / zrh, PyTorch's GRU as linear_before_reset = 1, nnc's
 *   `reset = before` as 0, sequence_lens = the row lengths); any other recurrence (attention inside
 *   the step, Bahdanau; an LSTM whose cell history is read) becomes an ONNX `Scan` whose body is the
 *   step, translated op by op, with padded steps leaving the state unchanged;
 * - a model that can generate also gets an encoder graph (seq2seq: what reads only the source) and
 *   a decoder-step graph whose recurrent states and key/value caches are inputs
 *   (`past_key_values.*`) and outputs (`present.*`). The split is the plan's:
 *   passes/generate.ts's `generatedNodes`, and whether the model generates at all is what expand
 *   decided (ModelIR.generate).
 *
 * Weights are initializers under their nnc names; gate reordering and transposes are ops on them
 * (ONNX Runtime folds them when a session starts).
 */
import type { Dim, Graph, Node, Shape } from '../ir/graph.ts';
import type { ModelIR } from '../ir/model.ts';
import type { OpAttrs } from '../ir/ops.ts';
import { generatedNodes } from '../passes/generate.ts';
import { removeDropout } from '../passes/inference.ts';
import type { OnnxDecodeIO, OnnxPast } from '../runtime/onnx-io.ts';
import { AT, DT, encodeModel, valueInfo, type AttributeProto, type DataType, type GraphProto, type NodeProto, type TensorProto, type ValueInfoProto } from './onnx-proto.ts';

export const OPSET = 17;
const IR_VERSION = 8;

/** A tensor of a graph's interface. */
export interface OnnxTensorSpec {
  readonly name: string;
  readonly dtype: 'float32' | 'int32';
  /** Numbers, or nnc's symbolic sizes: B (rows), T (the fed input's length), S (the source's), P (cached positions), K (= P + T). */
  readonly shape: readonly (number | string)[];
  readonly doc?: string;
}

export interface OnnxGraphIO {
  readonly inputs: readonly OnnxTensorSpec[];
  readonly outputs: readonly OnnxTensorSpec[];
}

export interface OnnxIO {
  readonly model: string;
  readonly opset: number;
  readonly forward: OnnxGraphIO;
  readonly encoder?: OnnxGraphIO;
  readonly decoder?: OnnxGraphIO & OnnxDecodeIO;
  /** Which recurrences became ONNX Scan loops rather than LSTM / GRU / RNN ops (by label), and why. */
  readonly loops: readonly { readonly label: string; readonly why: string }[];
}

export interface OnnxExport {
  readonly io: OnnxIO;
  /** The whole model (forward; teacher-forced for seq2seq). */
  readonly forward: Uint8Array;
  /** Seq2seq models that generate: what reads only the source. */
  readonly encoder?: Uint8Array;
  /** Models that generate: one decoding step (any number of tokens per call). */
  readonly decoder?: Uint8Array;
}

/** Weights by nnc name (the manifest's), float32. */
export type WeightValues = ReadonlyMap<string, Float32Array>;

// ───────────── graph building ─────────────

type AttrValue = { f: number } | { i: number } | { s: string } | { ints: readonly number[] } | { floats: readonly number[] } | { strings: readonly string[] } | { g: GraphProto };
const F = (f: number) => ({ f });
const I = (i: number) => ({ i });
const S = (s: string) => ({ s });
const INTS = (ints: readonly number[]) => ({ ints });

function attribute(name: string, v: AttrValue): AttributeProto {
  const enc = (s: string) => new TextEncoder().encode(s);
  if ('f' in v) return { name, type: AT.FLOAT, f: v.f };
  if ('i' in v) return { name, type: AT.INT, i: v.i };
  if ('s' in v) return { name, type: AT.STRING, s: enc(v.s) };
  if ('ints' in v) return { name, type: AT.INTS, ints: [...v.ints] };
  if ('floats' in v) return { name, type: AT.FLOATS, floats: [...v.floats] };
  if ('strings' in v) return { name, type: AT.STRINGS, strings: v.strings.map(enc) };
  return { name, type: AT.GRAPH, g: v.g };
}

/** A stock recurrent op's results: the hidden history [B, L, H] and the final h (and c) [B, H]. */
interface Rec {
  readonly kind: 'rec';
  readonly y: string;
  readonly h: string;
  readonly c?: string;
}
/** A key/value cache in forward: empty (P = 0), so appending to it is the identity. */
const EMPTY = { kind: 'empty' } as const;
type Val = string | Rec | typeof EMPTY;

/** One ONNX graph under construction (the model's, or a Scan body inside it). */
class OnnxGraph {
  readonly nodes: NodeProto[] = [];
  readonly inputs: ValueInfoProto[] = [];
  readonly outputs: ValueInfoProto[] = [];
  /** Per symbolic size: a graph input that has it, and the axis (top-level graphs). */
  readonly dimRefs = new Map<string, { value: string; axis: number }>();
  private readonly dims = new Map<string, string>();

  constructor(readonly x: Exporter, readonly parent?: OnnxGraph) {}

  get root(): OnnxGraph {
    return this.parent ? this.parent.root : this;
  }

  op(type: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, label = type, outs = 1): string[] {
    const output = Array.from({ length: outs }, () => this.x.fresh(label));
    this.nodes.push({
      input: [...inputs], output, name: `${label}#${this.x.nodeCount++}`, op_type: type,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return output;
  }
  op1(type: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, label = type): string {
    return this.op(type, inputs, attrs, label)[0]!;
  }

  input(name: string, elem: DataType, shape: Shape, doc?: string): string {
    this.inputs.push(valueInfo(name, elem, shape, doc));
    shape.forEach((d, axis) => {
      if (typeof d === 'string' && !this.dimRefs.has(d)) this.dimRefs.set(d, { value: name, axis });
    });
    return name;
  }

  /** A symbolic or fixed size as an int64 [1] tensor, computed once in the top-level graph. */
  dim(d: Dim | 'K'): string {
    if (typeof d === 'number') return this.x.i64([d]);
    const root = this.root;
    if (root !== this) return root.dim(d);
    const known = this.dims.get(d);
    if (known) return known;
    let v: string;
    if (d === 'K') v = this.op1('Add', [this.dim('P'), this.dim('T')], {}, 'K');
    else {
      const ref = this.dimRefs.get(d);
      if (!ref) throw new Error(`internal: no graph input gives size ${d}`);
      v = this.op1('Shape', [ref.value], { start: I(ref.axis), end: I(ref.axis + 1) }, d);
    }
    this.dims.set(d, v);
    return v;
  }

  /** A shape tensor [d0, d1, …]. */
  shape(dims: readonly (Dim | 'K')[]): string {
    return dims.length === 1 ? this.dim(dims[0]!) : this.op1('Concat', dims.map((d) => this.dim(d)), { axis: I(0) }, 'shape');
  }

  proto(name: string, initializers: TensorProto[] = []): GraphProto {
    return { node: this.nodes, name, initializer: initializers, input: this.inputs, output: this.outputs };
  }
}

// ───────────── the exporter ─────────────

/** What one graph (forward, encoder, decoder) is being built for. */
interface Mode {
  readonly kind: 'forward' | 'encoder' | 'decoder';
  /** decoder: the fed input's cache start (causal masks read it). */
  readonly cacheStart?: string;
  /** decoder: each carried recurrence's past state (replaces its initial state). */
  readonly pastState?: ReadonlyMap<number, string>;
}

class Exporter {
  nodeCount = 0;
  private names = 0;
  /** Initializers by name: the weights a graph reads, and constants. */
  private readonly inits = new Map<string, TensorProto>();
  private readonly consts = new Map<string, string>();
  /** Values derived from weights only, by key (reordered gate blocks, transposes): made once, in the top-level graph. */
  private readonly derived = new Map<string, string>();
  /** Per scan node: the final state (recurrences' `present`) and, for a Scan, its per-step extra outputs (attention). */
  readonly finals = new Map<number, string>();
  readonly extras = new Map<number, Map<string, string>>();
  readonly loops: { label: string; why: string }[] = [];
  private readonly loopSeen = new Set<string>();

  constructor(
    readonly ir: ModelIR,
    private readonly weights: WeightValues,
    readonly mode: Mode,
  ) {}

  fresh(hint: string): string {
    return `/${hint}:${this.names++}`;
  }

  initializers(): TensorProto[] {
    return [...this.inits.values()];
  }

  private constant(key: string, make: () => TensorProto): string {
    let name = this.consts.get(key);
    if (!name) {
      name = `/const:${this.consts.size}`;
      this.inits.set(name, { ...make(), name });
      this.consts.set(key, name);
    }
    return name;
  }
  i64(values: readonly number[], dims: number[] = [values.length]): string {
    return this.constant(`i64:${dims}:${values}`, () => ({ name: '', data_type: DT.INT64, dims, raw_data: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer) }));
  }
  /** A scalar int64. */
  i64s(v: number): string {
    return this.i64([v], []);
  }
  i32s(v: number): string {
    return this.constant(`i32:${v}`, () => ({ name: '', data_type: DT.INT32, dims: [], raw_data: new Uint8Array(Int32Array.of(v).buffer) }));
  }
  bools(values: readonly boolean[]): string {
    return this.constant(`bool:${values.map(Number).join('')}`, () => ({ name: '', data_type: DT.BOOL, dims: [values.length], raw_data: Uint8Array.from(values, Number) }));
  }
  f32(values: readonly number[], dims: number[] = []): string {
    return this.constant(`f32:${dims}:${values}`, () => ({ name: '', data_type: DT.FLOAT, dims, raw_data: new Uint8Array(Float32Array.from(values).buffer) }));
  }

  weight(name: string, shape: readonly Dim[]): string {
    if (!this.inits.has(name)) {
      const data = this.weights.get(name);
      if (!data) throw new Error(`internal: weight '${name}' was not given`);
      this.inits.set(name, { name, data_type: DT.FLOAT, dims: shape as number[], raw_data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
    }
    return name;
  }

  /** The sinusoid frequencies 10000^(-2i/dim) of each column, in float64 then float32 (as the runtime makes them). */
  sinFreqs(dim: number): string {
    return this.f32(Array.from({ length: dim }, (_, j) => Math.pow(10000, -(j - (j % 2)) / dim)), [dim]);
  }

  /** A weight-derived value, made once in the top-level graph. */
  once(g: OnnxGraph, key: string, make: (root: OnnxGraph) => string): string {
    let v = this.derived.get(key);
    if (!v) this.derived.set(key, (v = make(g.root)));
    return v;
  }

  loop(label: string, why: string): void {
    if (this.loopSeen.has(label)) return;
    this.loopSeen.add(label);
    this.loops.push({ label, why });
  }
}

/** A value computed from weights and constants only (no input, state or step). */
function constantNodes(g: Graph): Set<number> {
  const out = new Set<number>();
  for (const n of g.ordered()) {
    const source = n.op === 'param' || n.op === 'const' || n.op === 'sin_freqs';
    if (source || (n.inputs.length && n.op !== 'scan' && n.inputs.every((i) => out.has(i)))) out.add(n.id);
  }
  return out;
}

/** Nodes `roots` need, in topological (id) order. */
function ancestors(g: Graph, roots: readonly number[], stop: (id: number) => boolean = () => false): number[] {
  const seen = new Set<number>();
  const stack = [...roots];
  while (stack.length) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    if (!stop(id)) stack.push(...g.get(id).inputs);
  }
  return [...seen].sort((a, b) => a - b);
}

// ───────────── recurrences ─────────────

const GATE_ORDER = {
  // PyTorch i f g o → ONNX i o f c
  lstm: [0, 3, 1, 2],
  // PyTorch r z n → ONNX z r h
  gru: [1, 0, 2],
  rnn: [0],
} as const;

interface StockCell {
  readonly cell: 'rnn' | 'gru' | 'lstm';
  readonly H: number;
  readonly wih: Node;
  readonly whh: Node;
  readonly bih?: Node;
  readonly bhh?: Node;
  readonly act: 'Tanh' | 'Relu';
  readonly linearBeforeReset: number;
}

/**
 * The recurrence as ONNX's own op, when its body is exactly a stock cell (as src/layers/recurrent.ts
 * writes it: no attention inside) and what reads it can be given from the op's outputs; otherwise
 * why not (it then runs as a Scan).
 */
function stockCell(g: Graph, n: Node<'scan'>): StockCell | string {
  const a = n.attrs;
  const body = a.body;
  if (n.inputs.length > 2 + (a.init ? 1 : 0)) return 'attention inside the step (Bahdanau): the step reads values from outside the recurrence';
  const params = body.ordered().filter((x) => x.op === 'param');
  const find = (re: RegExp) => params.find((p) => re.test((p.attrs as OpAttrs['param']).name));
  const wih = find(/\.weight_ih_l\d+(_reverse)?$/);
  const whh = find(/\.weight_hh_l\d+(_reverse)?$/);
  if (!wih || !whh) throw new Error(`internal: recurrence ${n.label} has no stacked weights`);
  const H = whh.shape[1] as number;
  const steps = g.get(n.inputs[0]!);
  if (wih.shape[1] !== steps.shape[2]) return 'its input weights read more than the step input';
  let act: 'Tanh' | 'Relu' = 'Tanh';
  const next = body.get(body.outputs[0]!.node);
  if (a.cell === 'rnn' && next.op === 'unary' && (next.attrs as OpAttrs['unary']).fn === 'relu') act = 'Relu';
  // reset = before multiplies h by r before W_hn: a matmul whose data operand is a product
  const resetBefore = a.cell === 'gru' && body.ordered().some((x) => x.op === 'matmul' && body.get(x.inputs[0]!).op === 'binary');
  if (a.cell === 'lstm') {
    // the op gives the h history and the final (h, c): enough for readers of h, and for the final state
    const final = a.reverse ? 'first' : 'last';
    for (const id of new Set(g.users().get(n.id) ?? [])) {
      const u = g.get(id);
      const hOnly = u.op === 'slice' && (u.attrs as OpAttrs['slice']).start === 0 && (u.attrs as OpAttrs['slice']).count === H;
      const finalState = u.op === 'pool' && (u.attrs as OpAttrs['pool']).mode === final && (u.attrs as OpAttrs['pool']).split === undefined;
      if (!hOnly && !finalState) return `an LSTM whose cell state is read at every step (by '${u.label}'): ONNX's LSTM gives only the final cell state`;
    }
  }
  const bih = find(/\.bias_ih_l\d+(_reverse)?$/);
  const bhh = find(/\.bias_hh_l\d+(_reverse)?$/);
  return { cell: a.cell, H, wih, whh, bih, bhh, act, linearBeforeReset: a.cell === 'gru' && !resetBefore ? 1 : 0 };
}

// ───────────── op translation ─────────────

/** The ONNX value of IR node `id` (a stock recurrent op: its hidden history). */
function valueOf(env: ReadonlyMap<number, Val>, id: number): string {
  const v = env.get(id);
  if (typeof v === 'string') return v;
  if (v === undefined) throw new Error(`internal: ONNX value of %${id} used before it is made`);
  if (v.kind === 'empty') throw new Error(`internal: empty cache %${id} read directly`);
  return v.y;
}

class Translator {
  private readonly consts: Set<number>;

  constructor(
    private readonly x: Exporter,
    private readonly g: Graph,
  ) {
    this.consts = constantNodes(g);
  }

  /** Emits `ids` (in order) into `og`; `env` holds what is already known (inputs, captures). */
  emit(og: OnnxGraph, ids: readonly number[], env: Map<number, Val>): void {
    for (const id of ids) {
      if (env.has(id)) continue;
      const n = this.g.get(id);
      env.set(id, this.node(og, n, env));
    }
  }

  private str(env: Map<number, Val>, id: number): string {
    return valueOf(env, id);
  }

  private node(og: OnnxGraph, n: Node, env: Map<number, Val>): Val {
    const x = this.x;
    const L = n.label;
    const inp = (k: number) => this.str(env, n.inputs[k]!);
    const shapeOf = (k: number) => this.g.get(n.inputs[k]!).shape;
    switch (n.op) {
      case 'param': {
        const a = n.attrs as OpAttrs['param'];
        return x.weight(a.name, n.shape);
      }
      case 'const':
        return x.f32([(n.attrs as OpAttrs['const']).value]);
      case 'sin_freqs':
        return x.sinFreqs((n.attrs as OpAttrs['sin_freqs']).dim);
      case 'rows':
      case 'cols': {
        const a = n.attrs as OpAttrs['rows'];
        const src = inp(0);
        return x.once(og, `${n.op}:${src}:${a.start}:${a.count}`, (r) => r.op1('Slice', [src, x.i64([a.start]), x.i64([a.start + a.count]), x.i64([n.op === 'rows' ? 0 : 1])], {}, L));
      }
      case 'gather':
        return og.op1('Gather', [inp(0), inp(1)], { axis: I(0) }, L);
      case 'matmul': {
        const a = n.attrs as OpAttrs['matmul'];
        const w = inp(1);
        if (n.shape.length === 2) return og.op1('Gemm', a.bias ? [inp(0), w, inp(2)] : [inp(0), w], { transB: I(1) }, L);
        const wt = this.constant(n.inputs[1]!) ? x.once(og, `T:${w}`, (r) => r.op1('Transpose', [w], { perm: INTS([1, 0]) }, `${L}ᵀ`)) : og.op1('Transpose', [w], { perm: INTS([1, 0]) }, `${L}ᵀ`);
        const y = og.op1('MatMul', [inp(0), wt], {}, L);
        return a.bias ? og.op1('Add', [y, inp(2)], {}, L) : y;
      }
      case 'unary': {
        const fn = (n.attrs as OpAttrs['unary']).fn;
        const v = inp(0);
        switch (fn) {
          case 'tanh':
            return og.op1('Tanh', [v], {}, L);
          case 'sigmoid':
            return og.op1('Sigmoid', [v], {}, L);
          case 'relu':
            return og.op1('Relu', [v], {}, L);
          case 'sqrt':
            return og.op1('Sqrt', [v], {}, L);
          case 'half':
            return og.op1('Mul', [v, x.f32([0.5])], {}, L);
          case 'one_minus':
            return og.op1('Sub', [x.f32([1]), v], {}, L);
          case 'gelu': {
            // the exact form, 0.5 · x · (1 + erf(x / √2)) (Gelu itself is opset 20)
            const e = og.op1('Erf', [og.op1('Mul', [v, x.f32([Math.SQRT1_2])], {}, L)], {}, L);
            return og.op1('Mul', [og.op1('Mul', [v, og.op1('Add', [e, x.f32([1])], {}, L)], {}, L), x.f32([0.5])], {}, L);
          }
        }
        throw new Error(`internal: unary ${fn}`);
      }
      case 'binary': {
        const fn = (n.attrs as OpAttrs['binary']).fn;
        const op = { add: 'Add', mul: 'Mul', sub: 'Sub', div: 'Div', max: 'Max' }[fn];
        return og.op1(op, [inp(0), inp(1)], {}, L);
      }
      case 'einsum': {
        const a = n.attrs as OpAttrs['einsum'];
        const y = og.op1('Einsum', n.inputs.map((_, k) => inp(k)), { equation: S(a.spec) }, L);
        return a.scale === 1 ? y : og.op1('Mul', [y, x.f32([a.scale])], {}, L);
      }
      case 'slice': {
        const a = n.attrs as OpAttrs['slice'];
        const end = typeof a.count === 'number' ? x.i64([a.start + a.count]) : a.start === 0 ? og.dim(a.count) : og.op1('Add', [og.dim(a.count), x.i64([a.start])], {}, L);
        const src = inp(0);
        const make = (o: OnnxGraph) => o.op1('Slice', [src, x.i64([a.start]), end, x.i64([-1])], {}, L);
        return this.constant(n.inputs[0]!) && typeof a.count === 'number' ? x.once(og, `slice:${src}:${a.start}:${a.count}`, make) : make(og);
      }
      case 'unsqueeze':
        return og.op1('Unsqueeze', [inp(0), x.i64([(n.attrs as OpAttrs['unsqueeze']).axis])], {}, L);
      case 'split_heads': {
        const N = (n.attrs as OpAttrs['split_heads']).heads;
        const s = shapeOf(0);
        return og.op1('Reshape', [inp(0), x.i64([...s.slice(0, -1).map(() => 0), N, (s[s.length - 1] as number) / N])], {}, L);
      }
      case 'merge_heads': {
        const s = shapeOf(0);
        return og.op1('Reshape', [inp(0), x.i64([...s.slice(0, -2).map(() => 0), (s[s.length - 2] as number) * (s[s.length - 1] as number)])], {}, L);
      }
      case 'concat':
        return og.op1('Concat', [inp(0), inp(1)], { axis: I(-1) }, L);
      case 'flatten':
        return og.op1('Reshape', [inp(0), x.i64([0, -1])], {}, L);
      case 'softmax':
        return this.softmax(og, n as Node<'softmax'>, env);
      case 'layernorm':
        return og.op1('LayerNormalization', [inp(0), inp(1), inp(2)], { axis: I(-1), epsilon: F((n.attrs as OpAttrs['layernorm']).eps) }, L);
      case 'pool':
        return this.pool(og, n as Node<'pool'>, env);
      case 'mask': {
        const a = n.attrs as OpAttrs['mask'];
        const valid = this.valid(og, inp(0), n.shape.length, inp(1), a.axis, !!a.causal, n.inputs[1]!);
        return og.op1('Where', [valid, inp(0), x.f32([0])], {}, L);
      }
      case 'positions': {
        // t + offsets[b]
        const T = og.op1('Squeeze', [og.dim(n.shape[1]!)], {}, L);
        const t = og.op1('Cast', [og.op1('Range', [x.i64s(0), T, x.i64s(1)], {}, L)], { to: I(DT.INT32) }, L);
        return og.op1('Add', [og.op1('Unsqueeze', [t, x.i64([0])], {}, L), og.op1('Unsqueeze', [inp(0), x.i64([1])], {}, L)], {}, L);
      }
      case 'sinusoid': {
        // PE[p, j] = sin(p · f[j]) for even j, cos for odd j
        const dim = (n.attrs as OpAttrs['sinusoid']).dim;
        const ang = og.op1('Mul', [og.op1('Unsqueeze', [og.op1('Cast', [inp(0)], { to: I(DT.FLOAT) }, L), x.i64([-1])], {}, L), inp(1)], {}, L);
        const even = x.bools(Array.from({ length: dim }, (_, j) => j % 2 === 0));
        return og.op1('Where', [even, og.op1('Sin', [ang], {}, L), og.op1('Cos', [ang], {}, L)], {}, L);
      }
      case 'time_concat': {
        const cache = env.get(n.inputs[0]!);
        return cache === EMPTY ? inp(1) : og.op1('Concat', [inp(0), inp(1)], { axis: I(1) }, L);
      }
      case 'scan':
        return this.scan(og, n as Node<'scan'>, env);
      default:
        throw new Error(`internal: ONNX export of '${n.op}' (%${n.id}) outside its graph's inputs`);
    }
  }

  constant(id: number): boolean {
    return this.consts.has(id);
  }

  /**
   * Where index i on `axis` of a rank-`rank` tensor x is a valid position for row b: i < lengths[b];
   * `causal` (over a key cache): (i < lengths[b] or i ≥ P0) and i ≤ q + P, q the index on axis − 1
   * and P = (size of axis) − (size of axis − 1). A bool tensor that broadcasts against x.
   */
  private valid(og: OnnxGraph, xv: string, rank: number, lengths: string, axis: number, causal: boolean, lengthsNode: number): string {
    const x = this.x;
    const L = 'valid';
    const trailing = (k: number) => x.i64(Array.from({ length: k }, (_, j) => j + 1));
    const size = (ax: number) => og.op1('Shape', [xv], { start: I(ax), end: I(ax + 1) }, L);
    const Kd = size(axis);
    let i = og.op1('Range', [x.i64s(0), og.op1('Squeeze', [Kd], {}, L), x.i64s(1)], {}, L);
    if (axis < rank - 1) i = og.op1('Unsqueeze', [i, trailing(rank - 1 - axis)], {}, L);
    const len = og.op1('Unsqueeze', [og.op1('Cast', [lengths], { to: I(DT.INT64) }, L), trailing(rank - 1)], {}, L);
    let ok = og.op1('Less', [i, len], {}, L);
    if (!causal) return ok;
    // keys from the cache's generated part (≥ P0) are valid too; P0 = K in forward (none)
    const keyLengths = this.g.get(lengthsNode);
    if (keyLengths.op === 'key_lengths' && x.mode.cacheStart) {
      const p0 = og.op1('Cast', [x.mode.cacheStart], { to: I(DT.INT64) }, L);
      ok = og.op1('Or', [ok, og.op1('GreaterOrEqual', [i, p0], {}, L)], {}, L);
    }
    const Tq = size(axis - 1);
    const P = og.op1('Sub', [Kd, Tq], {}, L);
    const q = og.op1('Unsqueeze', [og.op1('Range', [x.i64s(0), og.op1('Squeeze', [Tq], {}, L), x.i64s(1)], {}, L), trailing(rank - axis)], {}, L);
    return og.op1('And', [ok, og.op1('LessOrEqual', [i, og.op1('Add', [q, P], {}, L)], {}, L)], {}, L);
  }

  private softmax(og: OnnxGraph, n: Node<'softmax'>, env: Map<number, Val>): string {
    const x = this.x;
    const a = n.attrs;
    const e = this.str(env, n.inputs[0]!);
    if (n.inputs.length < 2) return og.op1(a.log ? 'LogSoftmax' : 'Softmax', [e], { axis: I(-1) }, n.label);
    if (a.log) throw new Error('internal: masked log_softmax');
    // masked positions get −∞ before the softmax (a small mask, broadcast in the add), so exactly 0 after it
    const valid = this.valid(og, e, n.shape.length, this.str(env, n.inputs[1]!), n.shape.length - 1, !!a.causal, n.inputs[1]!);
    const bias = og.op1('Where', [valid, x.f32([0]), x.f32([-Infinity])], {}, n.label);
    return og.op1('Softmax', [og.op1('Add', [e, bias], {}, n.label)], { axis: I(-1) }, n.label);
  }

  private pool(og: OnnxGraph, n: Node<'pool'>, env: Map<number, Val>): string {
    const x = this.x;
    const { mode, split } = n.attrs;
    const L = n.label;
    const src = env.get(n.inputs[0]!);
    if (src !== undefined && typeof src === 'object' && src.kind === 'rec') {
      // the final state of a stock recurrent op (stockCell allowed only that): [h; c]
      return src.c ? og.op1('Concat', [src.h, src.c], { axis: I(-1) }, L) : src.h;
    }
    const v = this.str(env, n.inputs[0]!);
    const lengths = this.str(env, n.inputs[1]!);
    const len64 = () => og.op1('Cast', [lengths], { to: I(DT.INT64) }, L);
    const last = (t: string) => og.op1('GatherND', [t, og.op1('Unsqueeze', [og.op1('Sub', [len64(), x.i64s(1)], {}, L), x.i64([1])], {}, L)], { batch_dims: I(1) }, L);
    const first = (t: string) => og.op1('Gather', [t, x.i64s(0)], { axis: I(1) }, L);
    if (split !== undefined) {
      // after a bidirectional layer: forward half at the last valid step, backward half at step 0
      const W = n.shape[1] as number;
      const fwd = og.op1('Slice', [v, x.i64([0]), x.i64([split]), x.i64([-1])], {}, L);
      const bwd = og.op1('Slice', [v, x.i64([split]), x.i64([W]), x.i64([-1])], {}, L);
      return og.op1('Concat', [last(fwd), first(bwd)], { axis: I(-1) }, L);
    }
    if (mode === 'last') return last(v);
    if (mode === 'first') return first(v);
    const valid = this.valid(og, v, 3, lengths, 1, false, n.inputs[1]!);
    if (mode === 'max') return og.op1('ReduceMax', [og.op1('Where', [valid, v, x.f32([-Infinity])], {}, L)], { axes: INTS([1]), keepdims: I(0) }, L);
    const sum = og.op1('ReduceSum', [og.op1('Where', [valid, v, x.f32([0])], {}, L), x.i64([1])], { keepdims: I(0) }, L);
    return og.op1('Div', [sum, og.op1('Unsqueeze', [og.op1('Cast', [lengths], { to: I(DT.FLOAT) }, L), x.i64([1])], {}, L)], {}, L);
  }

  private scan(og: OnnxGraph, n: Node<'scan'>, env: Map<number, Val>): Val {
    const stock = stockCell(this.g, n);
    if (typeof stock === 'string') {
      this.x.loop(n.label.replace(/\.l\d+(\.reverse)?$/, ''), stock);
      return this.loop(og, n, env);
    }
    return this.stockOp(og, n, env, stock);
  }

  /** The initial state [B, S]: a decoding step's past state, the scan's own init, or none (zeros). */
  private init(n: Node<'scan'>, env: Map<number, Val>): string | undefined {
    const past = this.x.mode.pastState?.get(n.id);
    if (past) return past;
    return n.attrs.init ? this.str(env, n.inputs[2]!) : undefined;
  }

  private stockOp(og: OnnxGraph, n: Node<'scan'>, env: Map<number, Val>, c: StockCell): Val {
    const x = this.x;
    const L = n.label;
    const { cell, H } = c;
    const order = GATE_ORDER[cell];
    const name = (p: Node) => (p.attrs as OpAttrs['param']).name;
    const blocks = (p: Node) =>
      x.once(og, `gates:${name(p)}`, (r) => {
        const w = x.weight(name(p), p.shape);
        const parts = order.map((b) => r.op1('Slice', [w, x.i64([b * H]), x.i64([(b + 1) * H]), x.i64([0])], {}, `${L}.gates`));
        return parts.length === 1 ? parts[0]! : r.op1('Concat', parts, { axis: I(0) }, `${L}.gates`);
      });
    const W = x.once(og, `W:${name(c.wih)}`, (r) => r.op1('Unsqueeze', [blocks(c.wih), x.i64([0])], {}, `${L}.W`));
    const R = x.once(og, `R:${name(c.whh)}`, (r) => r.op1('Unsqueeze', [blocks(c.whh), x.i64([0])], {}, `${L}.R`));
    const B = c.bih && c.bhh ? x.once(og, `B:${name(c.bih)}`, (r) => r.op1('Unsqueeze', [r.op1('Concat', [blocks(c.bih!), blocks(c.bhh!)], { axis: I(0) }, `${L}.B`), x.i64([0])], {}, `${L}.B`)) : '';
    const X = og.op1('Transpose', [this.str(env, n.inputs[0]!)], { perm: INTS([1, 0, 2]) }, L);
    const init = this.init(n, env);
    const first = (from: number) => og.op1('Unsqueeze', [og.op1('Slice', [init!, x.i64([from]), x.i64([from + H]), x.i64([1])], {}, L), x.i64([0])], {}, L);
    const h0 = init ? first(0) : '';
    const c0 = init && cell === 'lstm' ? first(H) : '';
    const attrs: Record<string, AttrValue> = { hidden_size: I(H), direction: S(n.attrs.reverse ? 'reverse' : 'forward') };
    if (cell === 'gru') attrs.linear_before_reset = I(c.linearBeforeReset);
    if (cell === 'rnn') attrs.activations = { strings: [c.act] };
    const type = { lstm: 'LSTM', gru: 'GRU', rnn: 'RNN' }[cell];
    const lengths = this.str(env, n.inputs[1]!);
    const ins = [X, W, R, B, lengths, h0, ...(cell === 'lstm' ? [c0] : [])];
    while (ins[ins.length - 1] === '') ins.pop();
    const outs = og.op(type, ins, attrs, L, cell === 'lstm' ? 3 : 2);
    // Y [L, 1, B, H] → [B, L, H]
    const y = og.op1('Transpose', [og.op1('Squeeze', [outs[0]!, x.i64([1])], {}, L)], { perm: INTS([1, 0, 2]) }, L);
    const h = og.op1('Squeeze', [outs[1]!, x.i64([0])], {}, L);
    const cf = cell === 'lstm' ? og.op1('Squeeze', [outs[2]!, x.i64([0])], {}, L) : undefined;
    x.finals.set(n.id, cf ? og.op1('Concat', [h, cf], { axis: I(-1) }, L) : h);
    return cell === 'lstm' ? { kind: 'rec', y, h, c: cf } : y;
  }

  /**
   * Any other recurrence: an ONNX Scan over the time axis (axis 1) of the step inputs and of the
   * rows' validity, whose body is the step translated op by op; a padded step leaves the state as
   * it was and outputs 0. Values of the body that depend on neither state nor step (weight blocks,
   * captured encoder values) are made once, outside.
   */
  private loop(og: OnnxGraph, n: Node<'scan'>, env: Map<number, Val>): Val {
    const x = this.x;
    const a = n.attrs;
    const body = a.body;
    const L = n.label;
    const S = a.stateSize;
    const steps = this.g.get(n.inputs[0]!);
    const lengths = this.str(env, n.inputs[1]!);
    const bg = new OnnxGraph(x, og);
    const stateIn = x.fresh(`${L}.state`);
    const stepIn = x.fresh(`${L}.x`);
    const validIn = x.fresh(`${L}.valid`);
    bg.inputs.push(valueInfo(stateIn, DT.FLOAT, ['B', S]), valueInfo(stepIn, DT.FLOAT, ['B', steps.shape[2]!]), valueInfo(validIn, DT.BOOL, ['B']));
    const benv = new Map<number, Val>();
    const bt = new Translator(x, body);
    const variant = new Set<number>();
    const captureBase = 2 + (a.init ? 1 : 0);
    for (const b of body.ordered()) {
      if (b.op === 'state') benv.set(b.id, stateIn);
      else if (b.op === 'step') benv.set(b.id, stepIn);
      else if (b.op === 'capture') benv.set(b.id, this.str(env, n.inputs[captureBase + (b.attrs as OpAttrs['capture']).input]!));
      if (b.op === 'state' || b.op === 'step' || b.inputs.some((i) => variant.has(i))) variant.add(b.id);
    }
    for (const b of body.ordered()) {
      if (benv.has(b.id)) continue;
      benv.set(b.id, bt.node(variant.has(b.id) ? bg : og, b, benv));
    }
    const next = bt.str(benv, body.outputs[0]!.node);
    const ok = bg.op1('Unsqueeze', [validIn, x.i64([1])], {}, L);
    const stateOut = bg.op1('Where', [ok, next, stateIn], {}, L);
    const yOut = bg.op1('Where', [ok, next, x.f32([0])], {}, L);
    const extras = body.outputs.slice(1).map((o) => ({ name: o.name, value: bt.str(benv, o.node), shape: body.get(o.node).shape }));
    // a body output must be made in the body: outputs that were hoisted get an Identity
    const own = (v: string) => (bg.nodes.some((nd) => nd.output.includes(v)) ? v : bg.op1('Identity', [v], {}, L));
    bg.outputs.push(valueInfo(stateOut, DT.FLOAT, ['B', S]), valueInfo(yOut, DT.FLOAT, ['B', S]));
    for (const e of extras) bg.outputs.push(valueInfo(own(e.value), DT.FLOAT, e.shape));
    // validity per (row, step): t < lengths[b]
    const Ld = og.op1('Squeeze', [og.dim(steps.shape[1]!)], {}, L);
    const t = og.op1('Range', [x.i64s(0), Ld, x.i64s(1)], {}, L);
    const valid = og.op1('Less', [og.op1('Unsqueeze', [t, x.i64([0])], {}, L), og.op1('Unsqueeze', [og.op1('Cast', [lengths], { to: I(DT.INT64) }, L), x.i64([1])], {}, L)], {}, L);
    const init = this.init(n, env) ?? og.op1('Expand', [x.f32([0]), og.shape(['B', S])], {}, `${L}.zeros`);
    const dir = a.reverse ? 1 : 0;
    const nOut = 1 + extras.length;
    const outs = og.op('Scan', [init, this.str(env, n.inputs[0]!), valid], {
      body: { g: bg.proto(`${L} step`) },
      num_scan_inputs: I(2),
      scan_input_axes: INTS([1, 1]),
      scan_input_directions: INTS([dir, dir]),
      scan_output_axes: INTS(Array(nOut).fill(1)),
      scan_output_directions: INTS(Array(nOut).fill(dir)),
    }, L, 1 + nOut);
    x.finals.set(n.id, outs[0]!);
    x.extras.set(n.id, new Map(extras.map((e, k) => [e.name, outs[2 + k]!])));
    return outs[1]!;
  }
}


// ───────────── the graphs ─────────────

export interface ExportOptions {
  /** nnc's version, written as the producer's. */
  readonly producerVersion?: string;
  /** The spec's file name, for the models' doc strings. */
  readonly source?: string;
}

const elem = (n: Node): DataType => (n.dtype === 'i32' ? DT.INT32 : DT.FLOAT);
const spec = (name: string, dtype: DataType, shape: Shape, doc?: string): OnnxTensorSpec => ({ name, dtype: dtype === DT.FLOAT ? 'float32' : 'int32', shape: [...shape], ...(doc ? { doc } : {}) });

/** One graph's interface, declared as it is built. */
class Interface {
  readonly inputs: OnnxTensorSpec[] = [];
  readonly outputs: OnnxTensorSpec[] = [];
  constructor(readonly og: OnnxGraph) {}
  input(name: string, dtype: DataType, shape: Shape, doc?: string): string {
    this.inputs.push(spec(name, dtype, shape, doc));
    return this.og.input(name, dtype, shape, doc);
  }
  output(name: string, value: string, dtype: DataType, shape: Shape, doc?: string): void {
    this.outputs.push(spec(name, dtype, shape, doc));
    this.og.nodes.push({ input: [value], output: [name], name, op_type: 'Identity', attribute: [] });
    this.og.outputs.push(valueInfo(name, dtype, shape, doc));
  }
}

function modelBytes(x: Exporter, og: OnnxGraph, name: string, doc: string, io: OnnxIO, options: ExportOptions): Uint8Array {
  return encodeModel({
    ir_version: IR_VERSION,
    opset_import: [{ domain: '', version: OPSET }],
    producer_name: 'nnc',
    producer_version: options.producerVersion ?? '',
    doc_string: doc,
    graph: og.proto(name, x.initializers()),
    metadata_props: [{ key: 'nnc.io', value: JSON.stringify(io) }],
  });
}

/** What names the model's interface uses: model inputs and their lengths, the output. */
const lengthsName = (input: string) => `${input}.lengths`;

/**
 * The model's graphs as ONNX (dropout removed from `ir`'s graph): the forward graph always, and for a model that can generate the
 * decoder-step graph (and, seq2seq, the encoder graph). `weights` holds every manifest weight.
 */
export function exportOnnx(ir: ModelIR, weights: WeightValues, options: ExportOptions = {}): OnnxExport {
  // inference graphs (PyTorch's eval mode): dropout is the identity, its masks are training's (in place; idempotent)
  removeDropout(ir.graph);
  const g = ir.graph;
  const outNode = g.get(g.outputs[0]!.node);
  const nodes = g.ordered();
  const byInput = (op: string, input: string) => nodes.find((n) => n.op === op && ((n.attrs as { name?: string; input?: string }).name ?? (n.attrs as { input?: string }).input) === input);
  const from = options.source ? ` from ${options.source}` : '';

  // ── forward: every input and its lengths in, the output out ──
  const fx = new Exporter(ir, weights, { kind: 'forward' });
  const fg = new OnnxGraph(fx);
  const fi = new Interface(fg);
  const fenv = new Map<number, Val>();
  const declareInputs = (x: Exporter, ifc: Interface, env: Map<number, Val>, which: readonly ModelIR['inputs'][number][]) => {
    for (const inp of which) {
      const data = byInput('input', inp.name);
      const shape: Shape = inp.form === 'tokens' ? ['B', inp.time] : ['B', inp.time, inp.dim!];
      const name = ifc.input(inp.name, inp.form === 'tokens' ? DT.INT32 : DT.FLOAT, shape, inp.form === 'tokens' ? `token ids in [0, ${inp.vocab})` : 'feature vectors');
      const lengths = ifc.input(lengthsName(inp.name), DT.INT32, ['B'], 'valid steps per row (pack_padded_sequence lengths)');
      if (data) env.set(data.id, name);
      const len = byInput('lengths', inp.name);
      if (len) env.set(len.id, lengths);
      // not generated here: positions from 0, a causal self-attention's keys are the input's own
      const off = byInput('pos_offsets', inp.name);
      if (off) env.set(off.id, ifc.og.op1('Expand', [x.i32s(0), ifc.og.dim('B')], {}, 'offsets'));
      const keys = byInput('key_lengths', inp.name);
      if (keys) env.set(keys.id, lengths);
    }
  };
  declareInputs(fx, fi, fenv, ir.inputs);
  for (const n of nodes) if (n.op === 'cache') fenv.set(n.id, EMPTY);
  new Translator(fx, g).emit(fg, ancestors(g, [outNode.id]), fenv);
  fi.output(ir.output.name, valueOf(fenv, outNode.id), DT.FLOAT, outNode.shape, ir.output.seq ? 'the output, 0 at padded steps' : 'the output');
  const forwardIO: OnnxGraphIO = { inputs: fi.inputs, outputs: fi.outputs };
  const loops = [...fx.loops];

  if (!ir.generate.ok) {
    const io: OnnxIO = { model: ir.name, opset: OPSET, forward: forwardIO, loops };
    return { io, forward: modelBytes(fx, fg, ir.name, `${ir.name}${from}, exported by nnc: forward`, io, options) };
  }

  // ── decoding: the plan's split (passes/generate.ts) ──
  const seq2seq = ir.inputs.length > 1;
  const genInput = ir.inputs[ir.inputs.length - 1]!;
  const gen = generatedNodes(g, genInput.name);
  const consts = constantNodes(g);
  const decodePart = (id: number) => gen.has(id) || consts.has(id);
  // the last attention layer's weights in the decoder: a graph output (after the recurrence, Luong) or a scan's per-step output (inside it, Bahdanau)
  let attention: { outer?: number; scan?: number } | undefined;
  for (const n of nodes) {
    if (!gen.has(n.id)) continue;
    if (n.op === 'scan' && (n.attrs as OpAttrs['scan']).body.outputs.some((o) => o.name === 'attention')) attention = { scan: n.id };
    else if (g.outputs.some((o) => o.name === 'attention' && o.node === n.id)) attention = { outer: n.id };
  }
  const decIds = ancestors(g, [outNode.id, ...(attention?.outer !== undefined ? [attention.outer] : [])], (id) => !decodePart(id));
  const decSet = new Set(decIds);
  const scans = decIds.filter(decodePart).map((id) => g.get(id)).filter((n) => n.op === 'scan') as Node<'scan'>[];
  const caches = decIds.filter(decodePart).map((id) => g.get(id)).filter((n) => n.op === 'cache');
  const initOf = (s: Node<'scan'>) => (s.attrs.init ? s.inputs[2] : undefined);
  // what the decoder reads from the encoder part: besides the recurrences' initial states (carried as past states)
  const readers = new Map<number, number>();
  for (const id of decIds) {
    const n = g.get(id);
    if (!decodePart(id)) continue;
    n.inputs.forEach((i, k) => {
      if (decodePart(i)) return;
      if (n.op === 'scan' && k === 2 && (n.attrs as OpAttrs['scan']).init) return;
      readers.set(i, (readers.get(i) ?? 0) + 1);
    });
  }
  const captured = [...readers.keys()].sort((a, b) => a - b).map((id) => g.get(id));
  const sourceInput = seq2seq ? ir.inputs[0]! : undefined;
  const isSourceItself = (n: Node) => sourceInput !== undefined && (n.op === 'input' || n.op === 'lengths') && ((n.attrs as { name?: string; input?: string }).name ?? (n.attrs as { input?: string }).input) === sourceInput.name;
  const captureName = new Map<number, string>();
  captured.filter((n) => !isSourceItself(n)).forEach((n, k) => captureName.set(n.id, `encoder_out.${k}`));
  const label = (n: Node) => n.label;
  const pastOf = (n: Node) => (n.op === 'scan' ? label(n) : (n.attrs as OpAttrs['cache']).name);
  const past: OnnxPast[] = [
    ...scans.map((s) => ({ past: `past_key_values.${pastOf(s)}`, present: `present.${pastOf(s)}`, kind: 'state' as const, width: s.attrs.stateSize })),
    ...caches.map((c) => ({ past: `past_key_values.${pastOf(c)}`, present: `present.${pastOf(c)}`, kind: 'cache' as const, width: c.shape[2] as number })),
  ];

  // ── the decoder step ──
  const pastState = new Map<number, string>();
  const dx0 = { kind: 'decoder' as const, pastState };
  const keyLengths = byInput('key_lengths', genInput.name);
  const cacheStartName = `${genInput.name}.cache_start`;
  const dx = new Exporter(ir, weights, keyLengths && decSet.has(keyLengths.id) ? { ...dx0, cacheStart: cacheStartName } : dx0);
  const dg = new OnnxGraph(dx);
  const di = new Interface(dg);
  const denv = new Map<number, Val>();
  const tokens = di.input(genInput.name, DT.INT32, ['B', 'T'], `token ids in [0, ${genInput.vocab}): the tokens fed this step`);
  const lengths = di.input(lengthsName(genInput.name), DT.INT32, ['B'], 'tokens fed per row (1 while decoding; the prompt lengths for a first call over a prompt)');
  denv.set(byInput('input', genInput.name)!.id, tokens);
  const genLen = byInput('lengths', genInput.name);
  if (genLen) denv.set(genLen.id, lengths);
  const offsets = byInput('pos_offsets', genInput.name);
  let offsetsName: string | undefined;
  if (offsets && decSet.has(offsets.id)) denv.set(offsets.id, (offsetsName = di.input(`${genInput.name}.offsets`, DT.INT32, ['B'], 'per row, the position of the first token fed')));
  let keyLengthsName: string | undefined;
  if (keyLengths && decSet.has(keyLengths.id)) {
    denv.set(keyLengths.id, (keyLengthsName = di.input(`${genInput.name}.key_lengths`, DT.INT32, ['B'], 'per row, the valid cached positions below cache_start (a language model: the prompt lengths; a seq2seq decoder: 0)')));
    di.input(cacheStartName, DT.INT32, [], 'where the caches\' generated part starts (a language model: the padded prompt width; a seq2seq decoder: 0)');
  }
  const sourceNames: string[] = [];
  for (const n of captured) {
    if (isSourceItself(n)) {
      const name = n.op === 'lengths' ? lengthsName(sourceInput!.name) : sourceInput!.name;
      sourceNames.push(name);
      denv.set(n.id, di.input(name, elem(n), n.shape));
    } else denv.set(n.id, di.input(captureName.get(n.id)!, elem(n), n.shape, `from the encoder: ${label(n)}`));
  }
  for (const s of scans) pastState.set(s.id, di.input(`past_key_values.${pastOf(s)}`, DT.FLOAT, ['B', s.attrs.stateSize], `${label(s)}: the state after the previous step`));
  for (const c of caches) denv.set(c.id, di.input(`past_key_values.${pastOf(c)}`, DT.FLOAT, ['B', 'P', c.shape[2]!], `${label(c)}: keys or values of the positions so far`));
  new Translator(dx, g).emit(dg, decIds.filter((id) => decodePart(id) || denv.has(id)), denv);
  const readout = (() => {
    const pre = outNode.op === 'mask' ? g.get(outNode.inputs[0]!) : outNode;
    return pre.op === 'softmax' ? ((pre.attrs as OpAttrs['softmax']).log ? 'logprob' : 'prob') : 'logits';
  })();
  di.output(ir.output.name, valueOf(denv, outNode.id), DT.FLOAT, outNode.shape, `the output per step (${readout})`);
  for (const s of scans) di.output(`present.${pastOf(s)}`, dx.finals.get(s.id)!, DT.FLOAT, ['B', s.attrs.stateSize], `${label(s)}: the state at each row's last fed token`);
  for (const c of caches) {
    const tc = decIds.map((id) => g.get(id)).find((n) => n.op === 'time_concat' && n.inputs[0] === c.id)!;
    di.output(`present.${pastOf(c)}`, valueOf(denv, tc.id), DT.FLOAT, ['B', 'K', c.shape[2]!], `${label(c)}: the cache followed by this step's`);
  }
  let attentionName: string | undefined;
  if (attention) {
    const value = attention.outer !== undefined ? valueOf(denv, attention.outer) : dx.extras.get(attention.scan!)!.get('attention')!;
    di.output((attentionName = 'attention'), value, DT.FLOAT, ['B', 'T', 'S'], 'the last attention layer\'s weights over the source (heads averaged)');
  }
  const decode: OnnxDecodeIO = {
    input: genInput.name, lengths: lengthsName(genInput.name),
    ...(offsetsName ? { offsets: offsetsName } : {}),
    ...(keyLengthsName ? { keyLengths: keyLengthsName, cacheStart: cacheStartName } : {}),
    source: sourceNames, captures: [...captureName.values()], past, output: ir.output.name, readout,
    ...(attentionName ? { attention: attentionName } : {}),
  };
  for (const l of dx.loops) if (!loops.some((k) => k.label === l.label)) loops.push(l);

  // ── the encoder (seq2seq): the decoder's captures and initial states ──
  let encoder: { x: Exporter; og: OnnxGraph; io: OnnxGraphIO } | undefined;
  if (seq2seq) {
    const ex = new Exporter(ir, weights, { kind: 'encoder' });
    const eg = new OnnxGraph(ex);
    const ei = new Interface(eg);
    const eenv = new Map<number, Val>();
    declareInputs(ex, ei, eenv, [sourceInput!]);
    for (const n of nodes) if (n.op === 'cache' && !gen.has(n.id)) eenv.set(n.id, EMPTY);
    const inits = scans.map(initOf).filter((i): i is number => i !== undefined);
    const roots = [...captureName.keys(), ...inits];
    new Translator(ex, g).emit(eg, ancestors(g, roots), eenv);
    for (const [id, name] of captureName) ei.output(name, valueOf(eenv, id), elem(g.get(id)), g.get(id).shape, label(g.get(id)));
    for (const s of scans) {
      const i = initOf(s);
      const value = i !== undefined ? valueOf(eenv, i) : eg.op1('Expand', [ex.f32([0]), eg.shape(['B', s.attrs.stateSize])], {}, 'zeros');
      ei.output(`present.${pastOf(s)}`, value, DT.FLOAT, ['B', s.attrs.stateSize], `${label(s)}: the decoder's initial state`);
    }
    for (const c of caches) ei.output(`present.${pastOf(c)}`, eg.op1('Expand', [ex.f32([0]), eg.shape(['B', 0, c.shape[2]!])], {}, 'empty'), DT.FLOAT, ['B', 0, c.shape[2]!], `${label(c)}: empty before the first step`);
    encoder = { x: ex, og: eg, io: { inputs: ei.inputs, outputs: ei.outputs } };
    for (const l of ex.loops) if (!loops.some((k) => k.label === l.label)) loops.push(l);
  }

  const io: OnnxIO = {
    model: ir.name, opset: OPSET, forward: forwardIO,
    ...(encoder ? { encoder: encoder.io } : {}),
    decoder: { inputs: di.inputs, outputs: di.outputs, ...decode },
    loops,
  };
  return {
    io,
    forward: modelBytes(fx, fg, ir.name, `${ir.name}${from}, exported by nnc: forward`, io, options),
    ...(encoder ? { encoder: modelBytes(encoder.x, encoder.og, `${ir.name} encoder`, `${ir.name}${from}, exported by nnc: the encoder (run once per source)`, io, options) } : {}),
    decoder: modelBytes(dx, dg, `${ir.name} decoder step`, `${ir.name}${from}, exported by nnc: one decoding step (past_key_values.* in, present.* out)`, io, options),
  };
}
