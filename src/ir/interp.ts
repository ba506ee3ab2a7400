/**
 * A float64 interpreter for core-op graphs: the reference semantics of every op, written once,
 * plainly, one loop nest per op. It runs any graph the compiler makes — a model's forward graph at
 * any optimisation level (kernels are ignored), scan bodies, and the backward graphs of reverse
 * mode (src/passes/grad) — on Float64Arrays (Int32Arrays for i32 values), with the symbolic sizes
 * bound by `dims`. Tests use it as the ground truth the fast paths are held to: its forward equals
 * PyTorch's fixtures, and finite differences on it check every vector–Jacobian rule.
 *
 * Slow by design (no fusion, no GEMM): tiny shapes only.
 */
import type { Dim, Graph, Node, Shape } from './graph.ts';
import type { OpAttrs, OpName, UnaryFn } from './ops.ts';

export interface Tensor {
  readonly shape: readonly number[];
  readonly data: Float64Array | Int32Array;
}

/** Symbolic sizes. Defaults as in `forward`: S = T, P = 0 (empty caches), K = P + T, P0 = T. */
export interface Dims {
  readonly B: number;
  readonly T: number;
  readonly S?: number;
  readonly P?: number;
  readonly K?: number;
  readonly P0?: number;
}

export interface InterpEnv {
  readonly dims: Dims;
  /** Model inputs by name: token ids (Int32Array) or vectors. */
  readonly inputs?: Readonly<Record<string, Tensor>>;
  /** Valid lengths [B] per input name. */
  readonly lengths?: Readonly<Record<string, Int32Array>>;
  /** Weights by manifest name, row-major. */
  readonly params?: Readonly<Record<string, ArrayLike<number>>>;
  /** A backward graph's `saved` values, by name. */
  readonly saved?: Readonly<Record<string, Tensor>>;
  /** A backward graph's output cotangents, by output name. */
  readonly cotangents?: Readonly<Record<string, Tensor>>;
  /** Per input: where its first position sits (default 0) and its valid keys (default its lengths). */
  readonly posOffsets?: Readonly<Record<string, Int32Array>>;
  readonly keyLengths?: Readonly<Record<string, Int32Array>>;
  /** Dropout masks by layer (default all 1: the identity, as in evaluation). */
  readonly dropout?: Readonly<Record<number, Tensor>>;
  /** Key/value caches by name (default empty: P = 0). */
  readonly caches?: Readonly<Record<string, Tensor>>;
}

export interface Evaluation {
  /** Every node's value (the outer graph's; scan bodies' are not kept). */
  readonly values: ReadonlyMap<number, Tensor>;
  /** The graph's outputs by name (the first of each name). */
  readonly outputs: Readonly<Record<string, Tensor>>;
}

/** What a scan body sees: the state, this step's input, the captures. */
interface BodyArgs {
  readonly state: Tensor;
  readonly step: Tensor;
  readonly captures: readonly Tensor[];
}

interface Ctx {
  readonly env: InterpEnv;
  readonly dims: Required<Dims>;
  readonly body?: BodyArgs;
  /** Stacked per-step body outputs of the scans evaluated so far, by scan id. */
  readonly stacks: Map<number, Map<string, Tensor>>;
}

export class InterpError extends Error {}

export function evaluate(g: Graph, env: InterpEnv): Evaluation {
  const d = env.dims;
  const P = d.P ?? 0;
  const dims: Required<Dims> = { B: d.B, T: d.T, S: d.S ?? d.T, P, K: d.K ?? P + d.T, P0: d.P0 ?? d.T };
  const values = run(g, { env, dims, stacks: new Map() });
  const outputs: Record<string, Tensor> = {};
  for (const o of g.outputs) if (!(o.name in outputs)) outputs[o.name] = values.get(o.node)!;
  return { values, outputs };
}

function run(g: Graph, cx: Ctx): Map<number, Tensor> {
  const values = new Map<number, Tensor>();
  for (const n of g.ordered()) {
    const ins = n.inputs.map((i) => values.get(i)!);
    const out = (OPS[n.op] as Impl<OpName>)(n as Node<OpName>, ins, cx, g);
    const want = resolve(n.shape, cx.dims);
    if (!sameShape(out.shape, want)) throw new InterpError(`%${n.id} = ${n.op} (${n.label}): computed shape [${out.shape}], IR says [${want}]`);
    if ((n.dtype === 'i32') !== out.data instanceof Int32Array) throw new InterpError(`%${n.id} = ${n.op}: dtype`);
    values.set(n.id, out);
  }
  return values;
}

export function resolve(shape: Shape, dims: Required<Dims>): number[] {
  return shape.map((x: Dim) => {
    if (typeof x === 'number') return x;
    const [base, k] = x.split('/');
    return k === undefined ? dims[x as keyof Dims] : Math.ceil(dims[base as 'T' | 'S'] / Number(k));
  });
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => x === b[i]);
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const f64 = (shape: readonly number[], data?: Float64Array): Tensor => ({ shape, data: data ?? new Float64Array(size(shape)) });
const i32 = (shape: readonly number[], data?: Int32Array): Tensor => ({ shape, data: data ?? new Int32Array(size(shape)) });

function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** Calls f(flat, index) for every element of `shape` in row-major order. */
function each(shape: readonly number[], f: (flat: number, idx: number[]) => void): void {
  const n = size(shape);
  const idx = new Array<number>(shape.length).fill(0);
  for (let flat = 0; flat < n; flat++) {
    f(flat, idx);
    for (let a = shape.length - 1; a >= 0; a--) {
      if (++idx[a] < shape[a]) break;
      idx[a] = 0;
    }
  }
}

function lastDim(t: Tensor): number {
  return t.shape[t.shape.length - 1];
}

/** erf to ~1e-15: Taylor series below 2.5, the continued fraction of erfc above. */
export function erf(x: number): number {
  const a = Math.abs(x);
  let r: number;
  if (a < 2.5) {
    let term = a;
    let sum = a;
    for (let n = 1; n < 100; n++) {
      term *= (-a * a) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    let f = a;
    for (let k = 80; k >= 1; k--) f = a + k / 2 / f;
    r = 1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  }
  return x < 0 ? -r : r;
}

const SQRT1_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

export const UNARY: { readonly [F in UnaryFn]: (x: number) => number } = {
  tanh: Math.tanh,
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  relu: (x) => (x > 0 ? x : 0),
  gelu: (x) => 0.5 * x * (1 + erf(x * SQRT1_2)),
  one_minus: (x) => 1 - x,
  half: (x) => 0.5 * x,
  sqrt: Math.sqrt,
  exp: Math.exp,
  step: (x) => (x > 0 ? 1 : 0),
  gelu_grad: (x) => 0.5 * (1 + erf(x * SQRT1_2)) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x),
};

/** NumPy broadcasting of `t` to `shape`: element at `idx` of the result. */
function broadcastReader(t: Tensor, shape: readonly number[]): (idx: number[]) => number {
  const off = shape.length - t.shape.length;
  const st = strides(t.shape);
  return (idx) => {
    let flat = 0;
    for (let j = 0; j < t.shape.length; j++) if (t.shape[j] !== 1) flat += idx[off + j] * st[j];
    return t.data[flat];
  };
}

function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new InterpError(`shapes [${a}] and [${b}] do not broadcast`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** Whether key k is valid for query q of row b: softmax's and mask's rule (causal over a key cache). */
function keyValid(k: number, len: number, q: number, causal: boolean | undefined, dims: Required<Dims>): boolean {
  if (!causal) return k < len;
  return (k < len || k >= dims.P0) && k <= q + dims.P;
}

function takeLastAxis(x: Tensor, start: number, count: number): Tensor {
  const D = lastDim(x);
  const rows = x.data.length / D;
  const out = f64([...x.shape.slice(0, -1), count]);
  for (let r = 0; r < rows; r++) for (let j = 0; j < count; j++) out.data[r * count + j] = x.data[r * D + start + j];
  return out;
}

function concatAxis(a: Tensor, b: Tensor, axis: number): Tensor {
  const shape = a.shape.map((d, i) => (i === axis ? d + b.shape[axis] : d));
  const out = f64(shape);
  const inner = size(a.shape.slice(axis + 1));
  const outer = size(a.shape.slice(0, axis));
  const na = a.shape[axis] * inner;
  const nb = b.shape[axis] * inner;
  for (let o = 0; o < outer; o++) {
    out.data.set(a.data.subarray(o * na, (o + 1) * na), o * (na + nb));
    out.data.set(b.data.subarray(o * nb, (o + 1) * nb), o * (na + nb) + na);
  }
  return out;
}

type Impl<K extends OpName> = (n: Node<K>, ins: Tensor[], cx: Ctx, g: Graph) => Tensor;

function need<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new InterpError(`the environment has no ${what}`);
  return v;
}

const OPS: { readonly [K in OpName]: Impl<K> } = {
  input(n, _ins, cx) {
    const t = need(cx.env.inputs?.[n.attrs.name], `input '${n.attrs.name}'`);
    if (n.attrs.form === 'tokens' && !(t.data instanceof Int32Array)) throw new InterpError(`input '${n.attrs.name}' must be Int32Array token ids`);
    return n.attrs.form === 'tokens' ? t : f64(t.shape, Float64Array.from(t.data));
  },
  lengths: (n, _ins, cx) => i32([cx.dims.B], need(cx.env.lengths?.[n.attrs.input], `lengths of '${n.attrs.input}'`)),
  param(n, _ins, cx) {
    const w = need(cx.env.params?.[n.attrs.name], `weight '${n.attrs.name}'`);
    return f64(n.shape as number[], Float64Array.from(w));
  },
  rows(n, [w]) {
    const inner = size(w.shape.slice(1));
    return f64([n.attrs.count, ...w.shape.slice(1)], (w.data as Float64Array).slice(n.attrs.start * inner, (n.attrs.start + n.attrs.count) * inner));
  },
  cols: (n, [w]) => takeLastAxis(w, n.attrs.start, n.attrs.count),
  const: (n) => f64([], Float64Array.of(n.attrs.value)),
  gather(_n, [table, ids]) {
    const [V, D] = table.shape;
    const out = f64([...ids.shape, D]);
    ids.data.forEach((id, i) => {
      if (id < 0 || id >= V) throw new InterpError(`id ${id} outside [0, ${V})`);
      out.data.set(table.data.subarray(id * D, (id + 1) * D), i * D);
    });
    return out;
  },
  matmul(_n, [x, w, b]) {
    const [N, K] = w.shape;
    const rows = x.data.length / K;
    const out = f64([...x.shape.slice(0, -1), N]);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < N; j++) {
        let acc = b ? b.data[j] : 0;
        for (let k = 0; k < K; k++) acc += x.data[r * K + k] * w.data[j * K + k];
        out.data[r * N + j] = acc;
      }
    }
    return out;
  },
  unary: (n, [x]) => f64(x.shape, (x.data as Float64Array).map(UNARY[n.attrs.fn])),
  binary(n, [a, b]) {
    const shape = broadcastShape(a.shape, b.shape);
    const ra = broadcastReader(a, shape);
    const rb = broadcastReader(b, shape);
    const op = { add: (x: number, y: number) => x + y, sub: (x: number, y: number) => x - y, mul: (x: number, y: number) => x * y, div: (x: number, y: number) => x / y, max: Math.max }[n.attrs.fn];
    const out = f64(shape);
    each(shape, (flat, idx) => (out.data[flat] = op(ra(idx), rb(idx))));
    return out;
  },
  einsum(n, ins) {
    const [lhs, outL] = n.attrs.spec.split('->');
    const operands = lhs.split(',');
    const sizes = new Map<string, number>();
    operands.forEach((letters, i) => [...letters].forEach((c, j) => {
      if (sizes.has(c) && sizes.get(c) !== ins[i].shape[j]) throw new InterpError(`einsum ${n.attrs.spec}: axis ${c}`);
      sizes.set(c, ins[i].shape[j]);
    }));
    const letters = [...sizes.keys()];
    const all = letters.map((c) => sizes.get(c)!);
    const outShape = [...outL].map((c) => sizes.get(c)!);
    const outSt = strides(outShape);
    const pos = (c: string) => letters.indexOf(c);
    const opIdx = operands.map((ls, i) => ({ st: strides(ins[i].shape), at: [...ls].map(pos), data: ins[i].data }));
    const outAt = [...outL].map(pos);
    const out = f64(outShape);
    each(all, (_flat, idx) => {
      let p = n.attrs.scale;
      for (const o of opIdx) {
        let f = 0;
        for (let j = 0; j < o.at.length; j++) f += idx[o.at[j]] * o.st[j];
        p *= o.data[f];
      }
      let fo = 0;
      for (let j = 0; j < outAt.length; j++) fo += idx[outAt[j]] * outSt[j];
      out.data[fo] += p;
    });
    return out;
  },
  slice: (n, [x], cx) => takeLastAxis(x, n.attrs.start, typeof n.attrs.count === 'number' ? n.attrs.count : cx.dims[n.attrs.count]),
  unsqueeze(n, [x]) {
    const s = [...x.shape];
    s.splice(n.attrs.axis, 0, 1);
    return f64(s, x.data as Float64Array);
  },
  split_heads: (n, [x]) => f64([...x.shape.slice(0, -1), n.attrs.heads, lastDim(x) / n.attrs.heads], x.data as Float64Array),
  merge_heads: (_n, [x]) => f64([...x.shape.slice(0, -2), x.shape[x.shape.length - 2] * lastDim(x)], x.data as Float64Array),
  concat: (_n, [a, b]) => concatAxis(a, b, a.shape.length - 1),
  flatten(n, [x]) {
    if (x.shape[1] !== n.attrs.steps) throw new InterpError(`flatten of ${x.shape[1]} steps, expected ${n.attrs.steps}`);
    return f64([x.shape[0], x.shape[1] * x.shape[2]], x.data as Float64Array);
  },
  softmax(n, [x, lengths], cx) {
    const D = lastDim(x);
    const out = f64(x.shape);
    const rowShape = x.shape.slice(0, -1);
    each(rowShape, (r, idx) => {
      const base = r * D;
      const q = idx[idx.length - 1];
      const ok = (k: number) => !lengths || keyValid(k, lengths.data[idx[0]], q, n.attrs.causal, cx.dims);
      let m = -Infinity;
      for (let k = 0; k < D; k++) if (ok(k)) m = Math.max(m, x.data[base + k]);
      let s = 0;
      for (let k = 0; k < D; k++) if (ok(k)) s += Math.exp(x.data[base + k] - m);
      for (let k = 0; k < D; k++) {
        if (!ok(k)) continue;
        out.data[base + k] = n.attrs.log ? x.data[base + k] - m - Math.log(s) : Math.exp(x.data[base + k] - m) / s;
      }
    });
    return out;
  },
  positions(n, [off], cx) {
    const [B, T] = resolve(n.shape, cx.dims);
    const out = i32([B, T]);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) out.data[b * T + t] = t + off.data[b];
    return out;
  },
  pos_offsets: (n, _ins, cx) => i32([cx.dims.B], cx.env.posOffsets?.[n.attrs.input] ?? new Int32Array(cx.dims.B)),
  key_lengths: (n, _ins, cx) => i32([cx.dims.B], cx.env.keyLengths?.[n.attrs.input] ?? need(cx.env.lengths?.[n.attrs.input], `lengths of '${n.attrs.input}'`)),
  cache(n, _ins, cx) {
    const given = cx.env.caches?.[n.attrs.name];
    return given ? f64(given.shape, Float64Array.from(given.data)) : f64(resolve(n.shape, cx.dims));
  },
  time_concat: (_n, [c, x]) => concatAxis(c, x, 1),
  sinusoid(n, [pos, freqs]) {
    const D = n.attrs.dim;
    const out = f64([...pos.shape, D]);
    pos.data.forEach((p, i) => {
      for (let j = 0; j < D; j++) out.data[i * D + j] = j % 2 === 0 ? Math.sin(p * freqs.data[j]) : Math.cos(p * freqs.data[j]);
    });
    return out;
  },
  sin_freqs: (n) => f64([n.attrs.dim], Float64Array.from({ length: n.attrs.dim }, (_, j) => Math.pow(10000, -(j - (j % 2)) / n.attrs.dim))),
  layernorm(n, [x, gamma, beta]) {
    const D = lastDim(x);
    const out = f64(x.shape);
    for (let base = 0; base < x.data.length; base += D) {
      let mean = 0;
      for (let k = 0; k < D; k++) mean += x.data[base + k];
      mean /= D;
      let v = 0;
      for (let k = 0; k < D; k++) v += (x.data[base + k] - mean) ** 2;
      const inv = 1 / Math.sqrt(v / D + n.attrs.eps);
      for (let k = 0; k < D; k++) out.data[base + k] = (x.data[base + k] - mean) * inv * gamma.data[k] + beta.data[k];
    }
    return out;
  },
  dropout: (_n, [x, mask]) => f64(x.shape, (x.data as Float64Array).map((v, i) => v * mask.data[i])),
  dropout_mask(n, _ins, cx) {
    const given = cx.env.dropout?.[n.attrs.layer];
    if (given) return f64(given.shape, Float64Array.from(given.data));
    const shape = resolve(n.shape, cx.dims);
    return f64(shape, new Float64Array(size(shape)).fill(1));
  },
  pool(n, [x, lengths]) {
    const [B, L, D] = x.shape;
    const out = f64([B, D]);
    const at = (b: number, t: number, j: number) => x.data[(b * L + t) * D + j];
    for (let b = 0; b < B; b++) {
      const len = lengths.data[b];
      for (let j = 0; j < D; j++) {
        let v: number;
        switch (n.attrs.mode) {
          case 'last':
            v = n.attrs.split !== undefined && j >= n.attrs.split ? at(b, 0, j) : at(b, len - 1, j);
            break;
          case 'first':
            v = at(b, 0, j);
            break;
          case 'mean':
            v = 0;
            for (let t = 0; t < len; t++) v += at(b, t, j);
            v /= len;
            break;
          case 'max':
            v = -Infinity;
            for (let t = 0; t < len; t++) v = Math.max(v, at(b, t, j));
            break;
        }
        out.data[b * D + j] = v;
      }
    }
    return out;
  },
  mask(n, [x, lengths], cx) {
    const out = f64(x.shape);
    const { axis, causal } = n.attrs;
    each(x.shape, (flat, idx) => {
      if (keyValid(idx[axis], lengths.data[idx[0]], idx[axis - 1], causal, cx.dims)) out.data[flat] = x.data[flat];
    });
    return out;
  },
  scan(n, ins, cx) {
    const { reverse, body, stateSize: S, init } = n.attrs;
    const [xs, lengths] = ins;
    const captures = ins.slice(2 + (init ? 1 : 0));
    const [B, L, Dx] = xs.shape;
    const hist = f64([B, L, S]);
    const state = f64([B, S]);
    if (init) state.data.set(ins[2].data);
    const extra = body.outputs.slice(1);
    const stacks = new Map<string, Tensor>();
    for (let t0 = 0; t0 < L; t0++) {
      const t = reverse ? L - 1 - t0 : t0;
      const step = f64([B, Dx]);
      for (let b = 0; b < B; b++) step.data.set(xs.data.subarray((b * L + t) * Dx, (b * L + t + 1) * Dx), b * Dx);
      const vals = run(body, { ...cx, body: { state: f64([B, S], Float64Array.from(state.data)), step, captures } });
      const next = vals.get(body.outputs[0].node)!;
      for (const o of extra) {
        const v = vals.get(o.node)!;
        if (!stacks.has(o.name)) stacks.set(o.name, f64([B, L, ...v.shape.slice(1)]));
      }
      for (let b = 0; b < B; b++) {
        if (t >= lengths.data[b]) continue;
        state.data.set(next.data.subarray(b * S, (b + 1) * S), b * S);
        hist.data.set(next.data.subarray(b * S, (b + 1) * S), (b * L + t) * S);
        for (const o of extra) {
          const v = vals.get(o.node)!;
          const w = v.data.length / B;
          stacks.get(o.name)!.data.set(v.data.subarray(b * w, (b + 1) * w), (b * L + t) * w);
        }
      }
    }
    cx.stacks.set(n.id, stacks);
    return hist;
  },
  state: (_n, _ins, cx) => need(cx.body, 'scan body').state,
  step: (_n, _ins, cx) => need(cx.body, 'scan body').step,
  capture: (n, _ins, cx) => need(cx.body, 'scan body').captures[n.attrs.input],
  scatter_add(n, [ids, v]) {
    const D = lastDim(v);
    const out = f64([n.attrs.rows, D]);
    ids.data.forEach((id, i) => {
      for (let j = 0; j < D; j++) out.data[id * D + j] += v.data[i * D + j];
    });
    return out;
  },
  pad(n, [x]) {
    const { axis, start, size: total } = n.attrs;
    const shape = x.shape.map((d, i) => (i === axis ? total : d));
    const out = f64(shape);
    const st = strides(shape);
    each(x.shape, (flat, idx) => {
      let f = 0;
      for (let j = 0; j < idx.length; j++) f += (j === axis ? idx[j] + start : idx[j]) * st[j];
      out.data[f] = x.data[flat];
    });
    return out;
  },
  broadcast(n, [x], cx) {
    const shape = resolve(n.shape, cx.dims);
    const r = broadcastReader(x, shape);
    const out = f64(shape);
    each(shape, (flat, idx) => (out.data[flat] = r(idx)));
    return out;
  },
  unpool(n, [g, lengths, x], cx) {
    const [B, D] = g.shape;
    const L = resolve(n.shape, cx.dims)[1];
    const out = f64([B, L, D]);
    const put = (b: number, t: number, j: number, v: number) => (out.data[(b * L + t) * D + j] += v);
    for (let b = 0; b < B; b++) {
      const len = lengths.data[b];
      for (let j = 0; j < D; j++) {
        const v = g.data[b * D + j];
        switch (n.attrs.mode) {
          case 'last':
            put(b, n.attrs.split !== undefined && j >= n.attrs.split ? 0 : len - 1, j, v);
            break;
          case 'first':
            put(b, 0, j, v);
            break;
          case 'mean':
            for (let t = 0; t < len; t++) put(b, t, j, v / len);
            break;
          case 'max': {
            let best = 0;
            for (let t = 1; t < len; t++) if (x.data[(b * L + t) * D + j] > x.data[(b * L + best) * D + j]) best = t;
            put(b, best, j, v);
            break;
          }
        }
      }
    }
    return out;
  },
  stacked(n, _ins, cx) {
    const t = cx.stacks.get(n.inputs[0])?.get(n.attrs.output);
    return need(t, `stacked output '${n.attrs.output}' of %${n.inputs[0]}`);
  },
  shift(n, [h, init]) {
    const [B, L, S] = h.shape;
    const out = f64(h.shape);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < L; t++) {
        const from = n.attrs.reverse ? t + 1 : t - 1;
        if (from >= 0 && from < L) out.data.set(h.data.subarray((b * L + from) * S, (b * L + from + 1) * S), (b * L + t) * S);
        else if (init) out.data.set(init.data.subarray(b * S, (b + 1) * S), (b * L + t) * S);
      }
    }
    return out;
  },
  segments(n, [x]) {
    const [B, L, D] = x.shape;
    const { k } = n.attrs;
    const N = Math.ceil(L / k);
    const out = f64([B, N, k * D]);
    for (let b = 0; b < B; b++) out.data.set(x.data.subarray(b * L * D, (b + 1) * L * D), b * N * k * D);
    return out;
  },
  unsegment(n, [x], cx) {
    const [B, N, kD] = x.shape;
    const L = resolve(n.shape, cx.dims)[1];
    const D = kD / n.attrs.k;
    const out = f64([B, L, D]);
    for (let b = 0; b < B; b++) out.data.set(x.data.subarray(b * N * kD, b * N * kD + L * D), b * L * D);
    return out;
  },
  unflatten: (n, [x]) => f64([x.shape[0], n.attrs.steps, x.shape[1] / n.attrs.steps], x.data as Float64Array),
  every(n, [x]) {
    const [B, L, D] = x.shape;
    const { k, offset } = n.attrs;
    const N = Math.ceil(L / k);
    const out = f64([B, N, D]);
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < N; j++) {
        const t = Math.min(j * k + offset, L - 1);
        out.data.set(x.data.subarray((b * L + t) * D, (b * L + t + 1) * D), (b * N + j) * D);
      }
    }
    return out;
  },
  saved: (n, _ins, cx) => need(cx.env.saved?.[n.attrs.name], `saved value '${n.attrs.name}'`),
  cotangent: (n, _ins, cx) => need(cx.env.cotangents?.[n.attrs.output], `cotangent of '${n.attrs.output}'`),
};
