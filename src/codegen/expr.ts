/**
 * The per-element expression printer shared by every target. Given a kernel's root node and the
 * index variables of one output element, it writes the statements that compute that element,
 * inlining every non-materialized producer (views, elementwise ops, a matmul's dot product) and
 * reading materialized ones from buffers. Values are memoised per (node, index) within a scope,
 * so a gate used twice in one element is computed once.
 */
import type { Graph, Node, Shape } from '../ir/graph.ts';
import type { OpAttrs } from '../ir/ops.ts';
import type { Dialect } from './dialect.ts';

/** How a kernel reads a materialized node: an expression for the element at `idx`, or undefined to inline. */
export type Reader = (n: Node, idx: readonly string[]) => string | undefined;

export function num(v: number): string {
  if (Number.isInteger(v)) return `${v}.0`;
  const s = String(Math.fround(v) === v ? v : v);
  return s.includes('e') || s.includes('.') ? s : `${s}.0`;
}

export function dimExpr(d: Shape[number]): string {
  return typeof d === 'number' ? String(d) : d;
}

/** Row-major flat index of `idx` in a buffer of `shape`. */
export function flatIndex(shape: Shape, idx: readonly string[]): string {
  let e = idx[0];
  for (let i = 1; i < shape.length; i++) e = `(${e}) * ${dimExpr(shape[i])} + ${idx[i]}`;
  return e;
}

interface Scope {
  readonly memo: Map<string, string>;
  /** `for` scopes are what loop-invariant values are hoisted out of; `if`/`else` never are. */
  readonly kind: 'root' | 'for' | 'if';
  /** Index in `lines` of this block's header line (where hoisted code is inserted). */
  start: number;
  /** Identifiers declared in this block (the loop variable, temporaries). */
  readonly declared: Set<string>;
}

export class BodyWriter {
  readonly lines: string[] = [];
  private scopes: Scope[] = [{ memo: new Map(), kind: 'root', start: 0, declared: new Set() }];
  private tmp = 0;
  /** Where the next line goes: the end, or (while hoisting) just before a loop. */
  private cursor = 0;

  constructor(readonly g: Graph, readonly dialect: Dialect, private readonly read: Reader) {}

  emit(line: string): void {
    this.lines.splice(this.cursor++, 0, '  '.repeat(this.scopes.length) + line);
  }
  fresh(prefix: string): string {
    const v = `${prefix}${this.tmp++}`;
    this.scopes[this.scopes.length - 1].declared.add(v);
    return v;
  }
  /** Binds an expression to a new constant and returns its name. */
  bind(e: string, prefix = 'v'): string {
    if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(e) || /^-?[0-9.]+$/.test(e)) return e;
    const v = this.fresh(prefix);
    this.emit(`const ${v} = ${e};`);
    return v;
  }
  /** Runs `fn` inside `header { ... }` with its own memo scope; `loopVar` makes it a `for` scope. */
  block(header: string, fn: () => void, loopVar?: string): void {
    const start = this.cursor;
    this.emit(`${header} {`);
    this.scopes.push({ memo: new Map(), kind: loopVar ? 'for' : 'if', start, declared: new Set(loopVar ? [loopVar] : []) });
    fn();
    this.scopes.pop();
    this.emit('}');
  }
  /** A value computed only under `cond` (else `otherwise`): `let v = otherwise; if (cond) { v = … }`. */
  guarded(cond: string, otherwise: string, fn: () => string): string {
    const v = this.fresh('g');
    this.emit(`let ${v} = ${otherwise};`);
    this.block(`if (${cond})`, () => this.emit(`${v} = ${fn()};`));
    return v;
  }

  /** The value of node `id` at element `idx` (one index expression per axis). */
  val(id: number, idx: readonly string[]): string {
    const key = `${id}@${idx.join(',')}`;
    for (let i = this.scopes.length - 1; i >= 0; i--) {
      const hit = this.scopes[i].memo.get(key);
      if (hit !== undefined) return hit;
    }
    // Loop-invariant code motion: a value whose index uses nothing declared inside the enclosing
    // `for` loops is computed before them (e.g. an embedding row's token id, read once rather than
    // once per step of the dot product that reads the row).
    const names = new Set(idx.join(' ').match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? []);
    let target = this.scopes.length - 1;
    while (target > 0 && this.scopes[target].kind === 'for' && ![...this.scopes[target].declared].some((d) => names.has(d))) target--;
    if (target === this.scopes.length - 1) return this.valHere(key, id, idx);
    const inner = this.scopes.splice(target + 1);
    const saved = this.cursor;
    this.cursor = inner[0].start;
    const v = this.valHere(key, id, idx);
    const inserted = this.cursor - inner[0].start;
    this.scopes.push(...inner);
    for (const sc of inner) sc.start += inserted;
    this.cursor = saved + inserted;
    return v;
  }

  private valHere(key: string, id: number, idx: readonly string[]): string {
    const n = this.g.get(id);
    const buf = this.read(n, idx);
    const v = this.bind(buf !== undefined ? buf : this.compute(n, idx));
    this.scopes[this.scopes.length - 1].memo.set(key, v);
    return v;
  }

  private compute(n: Node, idx: readonly string[]): string {
    const last = idx.length - 1;
    const withLast = (j: string) => [...idx.slice(0, last), j];
    switch (n.op) {
      case 'rows': {
        const { start } = n.attrs as OpAttrs['rows'];
        return this.val(n.inputs[0], [`${idx[0]} + ${start}`, ...idx.slice(1)]);
      }
      case 'cols': {
        const { start } = n.attrs as OpAttrs['cols'];
        return this.val(n.inputs[0], [idx[0], start === 0 ? idx[1] : `${idx[1]} + ${start}`]);
      }
      case 'const':
        return num((n.attrs as OpAttrs['const']).value);
      case 'unsqueeze': {
        const { axis } = n.attrs as OpAttrs['unsqueeze'];
        return this.val(n.inputs[0], [...idx.slice(0, axis), ...idx.slice(axis + 1)]);
      }
      case 'split_heads': {
        const h = n.shape[n.shape.length - 1];
        return this.val(n.inputs[0], [...idx.slice(0, -2), `${idx[last - 1]} * ${dimExpr(h)} + ${idx[last]}`]);
      }
      case 'merge_heads': {
        const x = this.g.get(n.inputs[0]);
        const h = dimExpr(x.shape[x.shape.length - 1]);
        const q = this.bind(`Math.floor((${idx[last]} + 0.5) / ${h}.0)`, 'q');
        return this.val(x.id, [...idx.slice(0, -1), q, this.bind(`${idx[last]} - ${q} * ${h}`, 'r')]);
      }
      case 'einsum':
        return this.einsum(n, idx);
      case 'slice': {
        const { start } = n.attrs as OpAttrs['slice'];
        return start === 0 ? this.val(n.inputs[0], idx) : this.val(n.inputs[0], withLast(`${idx[last]} + ${start}`));
      }
      case 'concat': {
        const a = this.g.get(n.inputs[0]);
        const da = a.shape[a.shape.length - 1] as number;
        const v = this.fresh('c');
        this.emit(`let ${v} = 0.0;`);
        this.block(`if (${idx[last]} < ${da})`, () => this.emit(`${v} = ${this.val(a.id, idx)};`));
        this.block('else', () => this.emit(`${v} = ${this.val(n.inputs[1], withLast(`${idx[last]} - ${da}`))};`));
        return v;
      }
      case 'flatten': {
        const x = this.g.get(n.inputs[0]);
        const d = x.shape[x.shape.length - 1] as number;
        const q = this.bind(`Math.floor((${idx[1]} + 0.5) / ${d}.0)`, 'q');
        return this.val(x.id, [idx[0], q, this.bind(`${idx[1]} - ${q} * ${d}`, 'r')]);
      }
      case 'gather': {
        const id = this.val(n.inputs[1], idx.slice(0, last));
        return this.val(n.inputs[0], [id, idx[last]]);
      }
      case 'matmul': {
        const w = this.g.get(n.inputs[1]);
        const K = w.shape[1] as number;
        const acc = this.fresh('acc');
        const k = this.fresh('k');
        this.emit(`let ${acc} = 0.0;`);
        this.block(`for (let ${k} = 0; ${k} < ${K}; ${k}++)`, () => {
          const xv = this.val(n.inputs[0], withLast(k));
          const wv = this.val(w.id, [idx[last], k]);
          this.emit(`${acc} += ${xv} * ${wv};`);
        }, k);
        if ((n.attrs as OpAttrs['matmul']).bias) return `${acc} + ${this.val(n.inputs[2], [idx[last]])}`;
        return acc;
      }
      case 'unary': {
        const x = this.val(n.inputs[0], idx);
        switch ((n.attrs as OpAttrs['unary']).fn) {
          case 'tanh': return this.dialect.tanh(x, (e) => this.bind(e, 'e'));
          case 'sigmoid': return this.dialect.sigmoid(x);
          case 'relu': return `Math.max(${x}, 0.0)`;
          case 'one_minus': return `1.0 - ${x}`;
          case 'half': return `0.5 * ${x}`;
          case 'sqrt': return `Math.sqrt(${x})`;
          case 'gelu': return `${x} * 0.5 * (1.0 + ${this.erf(`${x} * 0.7071067811865476`)})`;
        }
        throw new Error('internal: unary');
      }
      case 'binary': {
        // NumPy broadcasting: operand axis j of rank r is output axis (rank - r + j); size 1 repeats
        const operand = (id: number) => {
          const sh = this.g.get(id).shape;
          return this.val(id, sh.map((d, j) => (d === 1 ? '0' : idx[idx.length - sh.length + j])));
        };
        const a = operand(n.inputs[0]);
        const b = operand(n.inputs[1]);
        const fn = (n.attrs as OpAttrs['binary']).fn;
        if (fn === 'max') return `Math.max(${a}, ${b})`;
        return `${a} ${{ add: '+', mul: '*', sub: '-', div: '/' }[fn]} ${b}`;
      }
      case 'mask': {
        const { axis, causal } = n.attrs as OpAttrs['mask'];
        const len = this.val(n.inputs[1], [idx[0]]);
        const k = idx[axis];
        const cond = causal ? `(${k} < ${len} || ${k} >= P0) && ${k} <= ${idx[axis - 1]} + P` : `${k} < ${len}`;
        return this.guarded(cond, '0.0', () => this.val(n.inputs[0], idx));
      }
      case 'positions':
        return `${idx[1]} + ${this.val(n.inputs[0], [idx[0]])}`;
      case 'time_concat': {
        // [B, P, W] then [B, T, W]
        const v = this.fresh('tc');
        this.emit(`let ${v} = 0.0;`);
        this.block(`if (${idx[1]} < P)`, () => this.emit(`${v} = ${this.val(n.inputs[0], idx)};`));
        this.block('else', () => this.emit(`${v} = ${this.val(n.inputs[1], [idx[0], `${idx[1]} - P`, idx[2]])};`));
        return v;
      }
      case 'sinusoid': {
        const p = this.val(n.inputs[0], idx.slice(0, last));
        const i2 = this.bind(`${idx[last]} - 2.0 * Math.floor((${idx[last]} + 0.5) / 2.0)`, 'par');
        const raw = this.bind(`${p} * ${this.val(n.inputs[1], [idx[last]])}`, 'ang');
        // reduced to [-π, π): GPU sin/cos lose accuracy on larger arguments
        const angle = this.bind(`${raw} - 6.283185307179586 * Math.floor((${raw} + 3.141592653589793) / 6.283185307179586)`, 'ang');
        const v = this.fresh('pe');
        this.emit(`let ${v} = 0.0;`);
        this.block(`if (${i2} < 0.5)`, () => this.emit(`${v} = Math.sin(${angle});`));
        this.block('else', () => this.emit(`${v} = Math.cos(${angle});`));
        return v;
      }
      default:
        throw new Error(`internal: '${n.op}' (%${n.id}) cannot be computed inline`);
    }
  }

  /** One element of an einsum: output letters are fixed by `idx`, the others are summed in nested loops. */
  private einsum(n: Node, idx: readonly string[]): string {
    const { spec, scale } = n.attrs as OpAttrs['einsum'];
    const [lhs, out] = spec.split('->');
    const operands = lhs.split(',');
    const bound = new Map<string, string>([...out].map((c, i) => [c, idx[i]]));
    const sizes = new Map<string, string>();
    operands.forEach((letters, i) => [...letters].forEach((c, j) => sizes.set(c, dimExpr(this.g.get(n.inputs[i]).shape[j]))));
    const reduced = [...sizes.keys()].filter((c) => !bound.has(c));
    const acc = this.fresh('acc');
    this.emit(`let ${acc} = 0.0;`);
    const loop = (depth: number): void => {
      if (depth === reduced.length) {
        const vals = operands.map((letters, i) => this.val(n.inputs[i], [...letters].map((c) => bound.get(c)!)));
        this.emit(`${acc} += ${vals.join(' * ')};`);
        return;
      }
      const c = reduced[depth];
      const k = this.fresh('k');
      bound.set(c, k);
      this.block(`for (let ${k} = 0; ${k} < ${sizes.get(c)}; ${k}++)`, () => loop(depth + 1), k);
    };
    loop(0);
    return scale === 1 ? acc : `${acc} * ${num(scale)}`;
  }

  /** erf(x), Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), as plain arithmetic every backend has. */
  private erf(x: string): string {
    const a = this.bind(x, 'ex');
    const s = this.bind(`${a} < 0.0 ? -1.0 : 1.0`, 'es');
    const z = this.bind(`Math.abs(${a})`, 'ez');
    const t = this.bind(`1.0 / (1.0 + 0.3275911 * ${z})`, 'et');
    const poly = `((((1.061405429 * ${t} - 1.453152027) * ${t} + 1.421413741) * ${t} - 0.284496736) * ${t} + 0.254829592) * ${t}`;
    return `(${s} * (1.0 - ${poly} * Math.exp(-${z} * ${z})))`;
  }
}
