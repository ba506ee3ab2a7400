/**
 * Graph construction with shape inference. Each builder method computes its result's shape from
 * its operands (the op's shape rule); a rule that fails on user-caused sizes reports a located
 * diagnostic (codes E05xx) and returns a placeholder so lowering can carry on and report more.
 */
import type { DiagnosticBag } from '../diagnostics/diagnostic.ts';
import type { Span } from '../diagnostics/span.ts';
import { Graph, lastDim, shapeStr, type DType, type Node, type Shape } from './graph.ts';
import type { BinaryFn, OpAttrs, OpName, UnaryFn } from './ops.ts';

export interface WeightEntry {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: 'F32';
  readonly layer: string;
  readonly span: Span;
}

export class Builder {
  constructor(
    readonly g: Graph,
    readonly diags: DiagnosticBag,
    /** Shared by a model's graph and its scan bodies, in load order. */
    readonly weights: WeightEntry[],
    private readonly params = new Map<string, number>(),
    private readonly shared = { bodies: 0 },
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

  /** A builder for a scan body: a fresh graph, same weight list; body params are re-declared by name. */
  body(): Builder {
    return new Builder(new Graph(1000 * ++this.shared.bodies), this.diags, this.weights, new Map(), this.shared);
  }

  input(name: string, form: 'tokens' | 'vectors', dim: number | undefined, span: Span, vocab?: number, maxLen?: number): number {
    const shape: Shape = form === 'tokens' ? ['B', 'T'] : ['B', 'T', dim!];
    return this.add('input', [], { name, form, vocab, maxLen }, shape, span, name, form === 'tokens' ? 'i32' : 'f32');
  }
  lengths(input: string, span: Span): number {
    return this.add('lengths', [], { input }, ['B'], span, `${input}.lengths`, 'i32');
  }

  /** Declares (once per graph) and returns a named weight. The first declaration enters the manifest. */
  param(name: string, shape: number[], layer: string, span: Span): number {
    const known = this.params.get(name);
    if (known !== undefined) return known;
    if (!this.weights.some((w) => w.name === name)) this.weights.push({ name, shape, dtype: 'F32', layer, span });
    const id = this.add('param', [], { name, layer }, shape, span, name);
    this.params.set(name, id);
    return id;
  }
  rows(param: number, start: number, count: number, span: Span): number {
    const s = this.shape(param);
    return this.add('rows', [param], { start, count }, [count, ...s.slice(1)], span, `${this.node(param).label}[${start}:${start + count}]`);
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
  binary(fn: BinaryFn, a: number, b: number, span: Span, label: string): number {
    const as = this.shape(a);
    const bs = this.shape(b);
    const same = as.length === bs.length && as.every((d, i) => d === bs[i]);
    const vec = bs.length === 1 && bs[0] === lastDim(as);
    if (!same && !vec) this.mismatch(span, `${fn} of ${shapeStr(as)} and ${shapeStr(bs)}`, lastDim(as), lastDim(bs));
    return this.add('binary', [a, b], { fn }, as, span, label);
  }
  slice(x: number, start: number, count: number, span: Span, label: string): number {
    const s = this.shape(x);
    return this.add('slice', [x], { start, count }, [...s.slice(0, -1), count], span, label);
  }
  concat(a: number, b: number, span: Span, label: string): number {
    const as = this.shape(a);
    return this.add('concat', [a, b], {}, [...as.slice(0, -1), lastDim(as) + lastDim(this.shape(b))], span, label);
  }
  flatten(x: number, steps: number, span: Span, label: string): number {
    const s = this.shape(x);
    return this.add('flatten', [x], { steps }, [s[0], steps * lastDim(s)], span, label);
  }
  softmax(x: number, log: boolean, span: Span, label: string): number {
    return this.add('softmax', [x], { log }, this.shape(x), span, label);
  }
  layernorm(x: number, gamma: number, beta: number, eps: number, span: Span, label: string): number {
    return this.add('layernorm', [x, gamma, beta], { eps }, this.shape(x), span, label);
  }
  pool(x: number, lengths: number, mode: OpAttrs['pool']['mode'], split: number | undefined, span: Span, label: string): number {
    const s = this.shape(x);
    return this.add('pool', [x, lengths], { mode, split }, [s[0], lastDim(s)], span, label);
  }
  mask(x: number, lengths: number, span: Span, label: string): number {
    return this.add('mask', [x, lengths], {}, this.shape(x), span, label);
  }
  state(size: number, span: Span, label: string): number {
    return this.add('state', [], {}, ['B', size], span, label);
  }
  step(size: number, span: Span, label: string): number {
    return this.add('step', [], {}, ['B', size], span, label);
  }
  scan(steps: number, lengths: number, init: number | undefined, attrs: OpAttrs['scan'], span: Span, label: string): number {
    const s = this.shape(steps);
    const inputs = init === undefined ? [steps, lengths] : [steps, lengths, init];
    return this.add('scan', inputs, attrs, [s[0], s[1], attrs.stateSize], span, label);
  }

  mismatch(span: Span, what: string, expected: number, actual: number): void {
    this.diags.error('E0501', `size mismatch in ${what}: expected ${expected}, got ${actual}`, span);
  }
}
