/**
 * Graph construction with shape inference. Each builder method computes its result's shape from
 * its operands with the op's shape rule (ir/ops.ts OP_TABLE, the rules the verifier checks); a rule
 * that fails on user-caused sizes reports a located diagnostic (E0501) and returns a placeholder so
 * lowering can carry on and report more.
 */
import type { DiagnosticBag } from '../diagnostics/diagnostic.ts';
import type { Span } from '../diagnostics/span.ts';
import type { Dim, DType, Graph, Node, Shape } from './graph.ts';
import { inferShape, isMismatch, type BinaryFn, type OpAttrs, type OpName, type UnaryFn } from './ops.ts';
import { MAX_PARAMETERS, MAX_WEIGHT_ELEMENTS } from '../layers/limits.schema.ts';
import type { WeightInfo } from '../runtime/types.ts';

/** A weight as the manifest lists it (the runtime's WeightInfo), and the statement that declared it. */
export interface WeightEntry extends WeightInfo {
  readonly span: Span;
}

/** Per model (its weight list): the parameters declared so far, their names, and what was reported. */
const paramTotals = new WeakMap<WeightEntry[], { total: number; over: boolean; reported: Set<number>; names: Set<string> }>();

export class Builder {
  constructor(
    readonly g: Graph,
    readonly diags: DiagnosticBag,
    /** Shared by a model's graph and its scan bodies, in load order. */
    readonly weights: WeightEntry[],
    private readonly params = new Map<string, number>(),
  ) {}

  /**
   * A node whose shape is its op's rule (ir/ops.ts) applied to its inputs; `declared` is the shape
   * of a source (or of what takes its sizes from elsewhere). A rule that fails on user-caused sizes
   * is diagnostic E0501, and the node gets a placeholder shape so that lowering can go on.
   */
  private add<K extends OpName>(op: K, inputs: number[], attrs: OpAttrs[K], span: Span, label: string, dtype: DType = 'f32', declared: Shape = []): number {
    const r = inferShape(op, inputs.map((i) => this.shape(i)), attrs, declared);
    let shape: Shape;
    if (isMismatch(r)) {
      this.mismatch(span, r.what, r.expected, r.actual);
      shape = declared.length || !inputs.length ? declared : this.shape(inputs[0]!);
    } else shape = r;
    return this.g.add(op, inputs, attrs, shape, span, label, dtype).id;
  }
  node(id: number): Node {
    return this.g.get(id);
  }
  shape(id: number): Shape {
    return this.g.get(id).shape;
  }

  /** A builder for a scan body: a fresh graph (same id source), same weight list; body params are re-declared by name. */
  body(): Builder {
    return new Builder(this.g.child(), this.diags, this.weights, new Map());
  }

  /** `time`: the input's symbolic length ('T', or 'S' for a seq2seq source). */
  input(name: string, form: 'tokens' | 'vectors', dim: number | undefined, span: Span, vocab?: number, maxLen?: number, time: 'T' | 'S' = 'T'): number {
    const shape: Shape = form === 'tokens' ? ['B', time] : ['B', time, dim!];
    return this.add('input', [], { name, form, vocab, maxLen }, span, name, form === 'tokens' ? 'i32' : 'f32', shape);
  }
  lengths(input: string, span: Span): number {
    return this.add('lengths', [], { input }, span, `${input}.lengths`, 'i32');
  }

  /** Declares (once per graph) and returns a named weight. The first declaration enters the manifest. */
  param(name: string, shape: number[], layer: string, span: Span): number {
    const known = this.params.get(name);
    if (known !== undefined) return known;
    const state = this.totals();
    if (!state.names.has(name)) {
      state.names.add(name);
      this.weights.push({ name, shape, dtype: 'F32', layer, span });
      this.checkSize(name, shape, span);
    }
    const id = this.add('param', [], { name, layer }, span, name, 'f32', shape);
    this.params.set(name, id);
    return id;
  }
  /**
   * Limits on weights (src/layers/limits.schema.ts): one tensor of at most MAX_WEIGHT_ELEMENTS
   * elements (E0515), a model of at most MAX_PARAMETERS parameters (E0516). Each is said once per
   * statement (a layer inside `repeat N` declares N weights from one span).
   */
  private totals() {
    let state = paramTotals.get(this.weights);
    if (!state) paramTotals.set(this.weights, (state = { total: 0, over: false, reported: new Set(), names: new Set(this.weights.map((w) => w.name)) }));
    return state;
  }

  private checkSize(name: string, shape: readonly number[], span: Span): void {
    const state = this.totals();
    const elements = shape.reduce((a, d) => a * d, 1);
    if (elements > MAX_WEIGHT_ELEMENTS) {
      if (!state.reported.has(span.start)) {
        state.reported.add(span.start);
        this.diags.error(
          'E0515',
          `weight '${name}' has shape [${shape.join(', ')}], ${elements} elements: more than the limit of ${MAX_WEIGHT_ELEMENTS} (2^31 − 1) elements per weight`,
          span,
          { suggestion: 'make this layer or the size coming into it smaller' },
        );
      }
      return;
    }
    state.total += elements;
    if (state.total > MAX_PARAMETERS && !state.over) {
      state.over = true;
      this.diags.error(
        'E0516',
        `the model has more than ${MAX_PARAMETERS} (2^40) parameters once weight '${name}' ([${shape.join(', ')}]) is added`,
        span,
        { suggestion: 'make the layers smaller, or use fewer of them (nested repeat counts multiply)' },
      );
    }
  }

  rows(param: number, start: number, count: number, span: Span): number {
    return this.add('rows', [param], { start, count }, span, `${this.node(param).label}[${start}:${start + count}]`);
  }

  cols(param: number, start: number, count: number, span: Span): number {
    return this.add('cols', [param], { start, count }, span, `${this.node(param).label}[:, ${start}:${start + count}]`);
  }
  constant(value: number, span: Span): number {
    return this.add('const', [], { value }, span, String(value));
  }

  gather(table: number, ids: number, span: Span, label: string): number {
    return this.add('gather', [table, ids], {}, span, label);
  }

  matmul(x: number, w: number, b: number | undefined, span: Span, label: string): number {
    return this.add('matmul', b === undefined ? [x, w] : [x, w, b], { bias: b !== undefined }, span, label);
  }
  unary(fn: UnaryFn, x: number, span: Span, label: string): number {
    return this.add('unary', [x], { fn }, span, label);
  }
  /** NumPy broadcasting: right-aligned, size-1 or missing axes repeat. */
  binary(fn: BinaryFn, a: number, b: number, span: Span, label: string): number {
    return this.add('binary', [a, b], { fn }, span, label);
  }
  einsum(spec: string, operands: number[], scale: number, span: Span, label: string): number {
    return this.add('einsum', operands, { spec, scale }, span, label);
  }
  slice(x: number, start: number, count: number | 'S' | 'T', span: Span, label: string): number {
    return this.add('slice', [x], { start, count }, span, label);
  }
  unsqueeze(x: number, axis: number, span: Span, label: string): number {
    return this.add('unsqueeze', [x], { axis }, span, label);
  }
  splitHeads(x: number, heads: number, span: Span, label: string): number {
    return this.add('split_heads', [x], { heads }, span, label);
  }
  mergeHeads(x: number, span: Span, label: string): number {
    return this.add('merge_heads', [x], {}, span, label);
  }
  concat(a: number, b: number, span: Span, label: string): number {
    return this.add('concat', [a, b], {}, span, label);
  }
  flatten(x: number, steps: number, span: Span, label: string): number {
    return this.add('flatten', [x], { steps }, span, label);
  }
  softmax(x: number, log: boolean, span: Span, label: string, lengths?: number, causal = false): number {
    return this.add('softmax', lengths === undefined ? [x] : [x, lengths], causal ? { log, causal } : { log }, span, label);
  }
  /** Positions [B, T] of the tokens of x [B, T, …]: t + the row's offset (0 in forward, later while generating). */
  positions(x: number, input: string, span: Span, label: string): number {
    const s = this.shape(x);
    return this.add('positions', [this.perRow('pos_offsets', input, span)], {}, span, label, 'i32', [s[0]!, s[1]!]);
  }
  /** An input's one pos_offsets / key_lengths source. */
  perRow(op: 'pos_offsets' | 'key_lengths', input: string, span: Span): number {
    const known = this.g.ordered().find((n) => n.op === op && (n.attrs as OpAttrs['key_lengths']).input === input);
    return known?.id ?? this.add(op, [], { input }, span, `${input}.${op === 'pos_offsets' ? 'position offsets' : 'key lengths'}`, 'i32');
  }
  /** Keys or values x [B, T, W] after those cached from earlier steps: [B, K, W]. */
  cached(x: number, name: string, span: Span): number {
    const s = this.shape(x);
    const cache = this.add('cache', [], { name }, span, `${name} (cache)`, 'f32', [s[0]!, 'P', s[2]!]);
    return this.add('time_concat', [cache, x], {}, span, `${name} (cache + this step)`);
  }
  sinusoid(pos: number, dim: number, span: Span, label: string): number {
    const known = this.g.ordered().find((n) => n.op === 'sin_freqs' && (n.attrs as OpAttrs['sin_freqs']).dim === dim);
    const freqs = known?.id ?? this.add('sin_freqs', [], { dim }, span, `sinusoid frequencies (${dim})`);
    return this.add('sinusoid', [pos, freqs], { dim }, span, label);
  }
  /** A dropout layer and its mask (numbered in the model's order of its dropout layers). */
  dropout(x: number, p: number, span: Span, label: string): number {
    const layer = [...this.g.nodes.values()].filter((n) => n.op === 'dropout').length;
    const mask = this.add('dropout_mask', [], { p, layer }, span, `${label}.mask`, 'f32', this.shape(x));
    return this.add('dropout', [x, mask], { p, layer }, span, label);
  }
  layernorm(x: number, gamma: number, beta: number, eps: number, span: Span, label: string): number {
    return this.add('layernorm', [x, gamma, beta], { eps }, span, label);
  }
  pool(x: number, lengths: number, mode: OpAttrs['pool']['mode'], split: number | undefined, span: Span, label: string): number {
    return this.add('pool', [x, lengths], { mode, split }, span, label);
  }
  /** Zero where the index on `axis` (default: time, 1) is ≥ lengths[b]. */
  mask(x: number, lengths: number, span: Span, label: string, axis = 1, causal = false): number {
    return this.add('mask', [x, lengths], causal ? { axis, causal } : { axis }, span, label);
  }
  state(size: number, span: Span, label: string): number {
    return this.add('state', [], {}, span, label, 'f32', ['B', size]);
  }
  step(size: number, span: Span, label: string): number {
    return this.add('step', [], {}, span, label, 'f32', ['B', size]);
  }
  /**
   * Inside a scan body (a builder from `outer.body()`): the outer value `outerId` of `outer`'s graph,
   * captured by the scan (once per value). scan() takes `captured` as its captures.
   */
  readonly captured: number[] = [];
  capture(outer: Builder, outerId: number): number {
    const known = this.captures.get(outerId);
    if (known !== undefined) return known;
    const n = outer.node(outerId);
    // weights (and views of them) are read by name in any graph: re-declare rather than capture
    if (n.op === 'param') {
      const a = n.attrs as OpAttrs['param'];
      return this.param(a.name, n.shape as number[], a.layer, n.span);
    }
    if (n.op === 'rows' || n.op === 'cols') {
      const a = n.attrs as OpAttrs['rows'];
      const id = this.add(n.op, [this.capture(outer, n.inputs[0]!)], { ...a }, n.span, n.label);
      this.captures.set(outerId, id);
      return id;
    }
    const id = this.add('capture', [], { input: this.captured.length }, n.span, `${n.label} (captured)`, n.dtype, n.shape);
    this.captured.push(outerId);
    this.captures.set(outerId, id);
    return id;
  }
  private readonly captures = new Map<number, number>();
  /** inputs: [steps, lengths, init?, ...captures]; body `capture` node k reads captures[k]. */
  scan(steps: number, lengths: number, init: number | undefined, captures: readonly number[], attrs: Omit<OpAttrs['scan'], 'init'>, span: Span, label: string): number {
    const inputs = [steps, lengths, ...(init === undefined ? [] : [init]), ...captures];
    return this.add('scan', inputs, { ...attrs, init: init !== undefined }, span, label);
  }

  // --- reverse mode (src/passes/grad): transposes and the backward graph's inputs

  scatterAdd(ids: number, values: number, rows: number, span: Span, label: string): number {
    return this.add('scatter_add', [ids, values], { rows }, span, label);
  }
  pad(x: number, axis: number, start: number, size: number, span: Span, label: string): number {
    return this.add('pad', [x], { axis, start, size }, span, label);
  }
  broadcast(x: number, shape: Shape, span: Span, label: string): number {
    return this.add('broadcast', [x], {}, span, label, 'f32', shape);
  }
  /** [g [B, D], lengths, x (max)] → [B, L, D], L the pooled input's time dim. */
  unpool(g: number, lengths: number, time: Dim, mode: OpAttrs['pool']['mode'], split: number | undefined, span: Span, label: string, x?: number): number {
    const [B, D] = this.shape(g);
    return this.add('unpool', x === undefined ? [g, lengths] : [g, lengths, x], split === undefined ? { mode } : { mode, split }, span, label, 'f32', [B!, time, D!]);
  }
  stacked(scan: number, output: string, step: Shape, span: Span, label: string): number {
    const s = this.shape(scan);
    return this.add('stacked', [scan], { output }, span, label, 'f32', [s[0]!, s[1]!, ...step.slice(1)]);
  }
  shift(history: number, init: number | undefined, reverse: boolean, span: Span, label: string): number {
    return this.add('shift', init === undefined ? [history] : [history, init], { reverse }, span, label);
  }
  segments(x: number, k: number, span: Span, label: string): number {
    return this.add('segments', [x], { k }, span, label);
  }
  unsegment(x: number, k: number, span: Span, label: string): number {
    return this.add('unsegment', [x], { k }, span, label);
  }
  every(x: number, k: number, offset: number, span: Span, label: string): number {
    return this.add('every', [x], { k, offset }, span, label);
  }
  saved(name: string, shape: Shape, dtype: DType, span: Span, label: string): number {
    return this.add('saved', [], { name }, span, label, dtype, shape);
  }
  cotangent(output: string, shape: Shape, span: Span): number {
    return this.add('cotangent', [], { output }, span, `d${output}`, 'f32', shape);
  }
  /** A copy of a node of any op (reverse mode copies forward nodes into backward graphs); `shape` is its declared shape. */
  raw<K extends OpName>(op: K, inputs: number[], attrs: OpAttrs[K], shape: Shape, span: Span, label: string, dtype: DType = 'f32'): number {
    return this.add(op, inputs, attrs, span, label, dtype, shape);
  }

  mismatch(span: Span, what: string, expected: number | string, actual: number | string): void {
    this.diags.error('E0501', `size mismatch in ${what}: expected ${expected}, got ${actual}`, span);
  }
}
