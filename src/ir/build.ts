/**
 * Graph construction with shape inference. Each builder method computes its result's shape from
 * its operands (the op's shape rule); a rule that fails on user-caused sizes reports a located
 * diagnostic (codes E05xx) and returns a placeholder so lowering can carry on and report more.
 */
import type { DiagnosticBag } from '../diagnostics/diagnostic.ts';
import type { Span } from '../diagnostics/span.ts';
import { lastDim, shapeStr, type Dim, type DType, type Node, type Shape } from './graph.ts';
import type { Graph } from './graph.ts';
import type { BinaryFn, OpAttrs, OpName, UnaryFn } from './ops.ts';
import { MAX_PARAMETERS, MAX_WEIGHT_ELEMENTS } from '../layers/limits.schema.ts';

export interface WeightEntry {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: 'F32';
  readonly layer: string;
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

  private add<K extends OpName>(op: K, inputs: number[], attrs: OpAttrs[K], shape: Shape, span: Span, label: string, dtype: DType = 'f32'): number {
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
    return this.add('input', [], { name, form, vocab, maxLen }, shape, span, name, form === 'tokens' ? 'i32' : 'f32');
  }
  lengths(input: string, span: Span): number {
    return this.add('lengths', [], { input }, ['B'], span, `${input}.lengths`, 'i32');
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
    const id = this.add('param', [], { name, layer }, shape, span, name);
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
    const s = this.shape(param);
    return this.add('rows', [param], { start, count }, [count, ...s.slice(1)], span, `${this.node(param).label}[${start}:${start + count}]`);
  }

  cols(param: number, start: number, count: number, span: Span): number {
    const [n] = this.shape(param);
    return this.add('cols', [param], { start, count }, [n, count], span, `${this.node(param).label}[:, ${start}:${start + count}]`);
  }
  constant(value: number, span: Span): number {
    return this.add('const', [], { value }, [], span, String(value));
  }

  gather(table: number, ids: number, span: Span, label: string): number {
    const [, d] = this.shape(table) as number[];
    return this.add('gather', [table, ids], {}, [...this.shape(ids), d], span, label);
  }

  matmul(x: number, w: number, b: number | undefined, span: Span, label: string): number {
    const xs = this.shape(x);
    const [n, k] = this.shape(w) as number[];
    if (lastDim(xs) !== k) this.mismatch(span, `matmul of ${shapeStr(xs)} by a [${n}, ${k}] weight`, k, lastDim(xs));
    return this.add('matmul', b === undefined ? [x, w] : [x, w, b], { bias: b !== undefined }, [...xs.slice(0, -1), n], span, label);
  }
  unary(fn: UnaryFn, x: number, span: Span, label: string): number {
    return this.add('unary', [x], { fn }, this.shape(x), span, label);
  }
  /** NumPy broadcasting: right-aligned, size-1 or missing axes repeat. */
  binary(fn: BinaryFn, a: number, b: number, span: Span, label: string): number {
    const as = this.shape(a);
    const bs = this.shape(b);
    const n = Math.max(as.length, bs.length);
    const out: Dim[] = [];
    for (let i = 0; i < n; i++) {
      const da = as[as.length - n + i] ?? 1;
      const db = bs[bs.length - n + i] ?? 1;
      if (da !== db && da !== 1 && db !== 1) {
        this.mismatch(span, `${fn} of ${shapeStr(as)} and ${shapeStr(bs)}`, typeof da === 'number' ? da : 0, typeof db === 'number' ? db : 0);
        return this.add('binary', [a, b], { fn }, as, span, label);
      }
      out.push(da === 1 ? db : da);
    }
    return this.add('binary', [a, b], { fn }, out, span, label);
  }
  einsum(spec: string, operands: number[], scale: number, span: Span, label: string): number {
    const [lhs, out] = spec.split('->');
    const size = new Map<string, Dim>();
    lhs.split(',').forEach((letters, i) => {
      const s = this.shape(operands[i]);
      if (s.length !== letters.length) throw new Error(`internal: einsum ${spec} operand ${i} has shape ${shapeStr(s)}`);
      [...letters].forEach((c, j) => {
        const known = size.get(c);
        if (known !== undefined && known !== s[j]) this.mismatch(span, `${label} (${spec}) on axis '${c}'`, typeof known === 'number' ? known : 0, typeof s[j] === 'number' ? (s[j] as number) : 0);
        size.set(c, s[j]);
      });
    });
    return this.add('einsum', operands, { spec, scale }, [...out].map((c) => size.get(c)!), span, label);
  }
  slice(x: number, start: number, count: number | 'S' | 'T', span: Span, label: string): number {
    const s = this.shape(x);
    return this.add('slice', [x], { start, count }, [...s.slice(0, -1), count], span, label);
  }
  unsqueeze(x: number, axis: number, span: Span, label: string): number {
    const s = [...this.shape(x)];
    s.splice(axis, 0, 1);
    return this.add('unsqueeze', [x], { axis }, s, span, label);
  }
  splitHeads(x: number, heads: number, span: Span, label: string): number {
    const s = this.shape(x);
    return this.add('split_heads', [x], { heads }, [...s.slice(0, -1), heads, lastDim(s) / heads], span, label);
  }
  mergeHeads(x: number, span: Span, label: string): number {
    const s = this.shape(x);
    return this.add('merge_heads', [x], {}, [...s.slice(0, -2), (s[s.length - 2] as number) * lastDim(s)], span, label);
  }
  concat(a: number, b: number, span: Span, label: string): number {
    const as = this.shape(a);
    return this.add('concat', [a, b], {}, [...as.slice(0, -1), lastDim(as) + lastDim(this.shape(b))], span, label);
  }
  flatten(x: number, steps: number, span: Span, label: string): number {
    const s = this.shape(x);
    return this.add('flatten', [x], { steps }, [s[0], steps * lastDim(s)], span, label);
  }
  softmax(x: number, log: boolean, span: Span, label: string, lengths?: number, causal = false): number {
    return this.add('softmax', lengths === undefined ? [x] : [x, lengths], causal ? { log, causal } : { log }, this.shape(x), span, label);
  }
  /** Positions [B, T] of the tokens of x [B, T, …]: t + the row's offset (0 in forward, later while generating). */
  positions(x: number, input: string, span: Span, label: string): number {
    const s = this.shape(x);
    return this.add('positions', [this.perRow('pos_offsets', input, span)], {}, [s[0], s[1]], span, label, 'i32');
  }
  /** An input's one pos_offsets / key_lengths source. */
  perRow(op: 'pos_offsets' | 'key_lengths', input: string, span: Span): number {
    const known = this.g.ordered().find((n) => n.op === op && (n.attrs as OpAttrs['key_lengths']).input === input);
    return known?.id ?? this.add(op, [], { input }, ['B'], span, `${input}.${op === 'pos_offsets' ? 'position offsets' : 'key lengths'}`, 'i32');
  }
  /** Keys or values x [B, T, W] after those cached from earlier steps: [B, K, W]. */
  cached(x: number, name: string, span: Span): number {
    const s = this.shape(x);
    const cache = this.add('cache', [], { name }, [s[0], 'P', s[2]], span, `${name} (cache)`);
    return this.add('time_concat', [cache, x], {}, [s[0], 'K', s[2]], span, `${name} (cache + this step)`);
  }
  sinusoid(pos: number, dim: number, span: Span, label: string): number {
    const known = this.g.ordered().find((n) => n.op === 'sin_freqs' && (n.attrs as OpAttrs['sin_freqs']).dim === dim);
    const freqs = known?.id ?? this.add('sin_freqs', [], { dim }, [dim], span, `sinusoid frequencies (${dim})`);
    return this.add('sinusoid', [pos, freqs], { dim }, [...this.shape(pos), dim], span, label);
  }
  layernorm(x: number, gamma: number, beta: number, eps: number, span: Span, label: string): number {
    return this.add('layernorm', [x, gamma, beta], { eps }, this.shape(x), span, label);
  }
  pool(x: number, lengths: number, mode: OpAttrs['pool']['mode'], split: number | undefined, span: Span, label: string): number {
    const s = this.shape(x);
    return this.add('pool', [x, lengths], { mode, split }, [s[0], lastDim(s)], span, label);
  }
  /** Zero where the index on `axis` (default: time, 1) is ≥ lengths[b]. */
  mask(x: number, lengths: number, span: Span, label: string, axis = 1, causal = false): number {
    return this.add('mask', [x, lengths], causal ? { axis, causal } : { axis }, this.shape(x), span, label);
  }
  state(size: number, span: Span, label: string): number {
    return this.add('state', [], {}, ['B', size], span, label);
  }
  step(size: number, span: Span, label: string): number {
    return this.add('step', [], {}, ['B', size], span, label);
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
      const id = this.add(n.op, [this.capture(outer, n.inputs[0])], { ...a }, n.shape, n.span, n.label);
      this.captures.set(outerId, id);
      return id;
    }
    const id = this.add('capture', [], { input: this.captured.length }, n.shape, n.span, `${n.label} (captured)`, n.dtype);
    this.captured.push(outerId);
    this.captures.set(outerId, id);
    return id;
  }
  private readonly captures = new Map<number, number>();
  /** inputs: [steps, lengths, init?, ...captures]; body `capture` node k reads captures[k]. */
  scan(steps: number, lengths: number, init: number | undefined, captures: readonly number[], attrs: Omit<OpAttrs['scan'], 'init'>, span: Span, label: string): number {
    const s = this.shape(steps);
    const inputs = [steps, lengths, ...(init === undefined ? [] : [init]), ...captures];
    return this.add('scan', inputs, { ...attrs, init: init !== undefined }, [s[0], s[1], attrs.stateSize], span, label);
  }

  mismatch(span: Span, what: string, expected: number, actual: number): void {
    this.diags.error('E0501', `size mismatch in ${what}: expected ${expected}, got ${actual}`, span);
  }
}
