/**
 * The per-element body writer shared by every target. Given a kernel's root node and the index
 * expressions of one output element, it writes the kernel IR statements (src/codegen/kir.ts) that
 * compute that element, inlining every non-materialized producer (views, elementwise ops, a
 * matmul's dot product) and reading materialized ones from buffers. Values are memoised per
 * (node, index) within a scope, so a gate used twice in one element is computed once; a value whose
 * index does not depend on an enclosing loop is computed before that loop.
 */
import type { Graph, Node, Shape } from '../ir/graph.ts';
import type { OpAttrs } from '../ir/ops.ts';
import {
  add, bin, call, exprKey, exprUses, f, int, mul, neg, scalar, sel, sub, v,
  type Expr, type Scalar, type Stmt,
} from './kir.ts';

/** How a kernel reads a materialized node: an expression for the element at `idx`, or undefined to inline. */
export type Reader = (n: Node, idx: readonly Expr[]) => Expr | undefined;

/** A dim as an index expression: a literal, a symbolic size, or ⌈T / k⌉ (`T/k`, recomputation's segments) as ⌊(T + k − ½) / k⌋. */
export function dimExpr(d: Shape[number]): Expr {
  if (typeof d === 'number') return int(d);
  const [base, k] = d.split('/');
  if (k === undefined) return scalar(d as Scalar);
  return call('floor', bin('/', bin('+', scalar(base as Scalar), f(Number(k) - 0.5)), f(Number(k))));
}

export function dimsOf(shape: Shape): Expr[] {
  return shape.map(dimExpr);
}

interface Scope {
  readonly memo: Map<string, Expr>;
  /** `for` scopes are what loop-invariant values are hoisted out of; `if`/`else` never are. */
  readonly kind: 'root' | 'for' | 'if';
  readonly stmts: Stmt[];
  /** The block statement now being written inside this scope: hoisted statements go before it. */
  open?: Stmt;
  /** Names declared in this block (the loop variable, temporaries). */
  readonly declared: Set<string>;
}

export class BodyWriter {
  readonly body: Stmt[] = [];
  private scopes: Scope[] = [{ memo: new Map(), kind: 'root', stmts: this.body, declared: new Set() }];
  private tmp = 0;

  constructor(readonly g: Graph, private readonly read: Reader) {}

  emit(s: Stmt): void {
    const sc = this.scopes[this.scopes.length - 1]!;
    const at = sc.open ? sc.stmts.indexOf(sc.open) : -1;
    if (at < 0) sc.stmts.push(s);
    else sc.stmts.splice(at, 0, s);
  }
  fresh(prefix: string): string {
    const name = `${prefix}${this.tmp++}`;
    this.scopes[this.scopes.length - 1]!.declared.add(name);
    return name;
  }
  /** Binds an expression to a new constant and returns it as a variable (literals and variables are returned as they are). */
  bind(e: Expr, prefix = 'v'): Expr {
    if (e.k === 'var' || e.k === 'f' || e.k === 'i' || e.k === 'scalar') return e;
    const name = this.fresh(prefix);
    this.emit({ k: 'const', name, value: e });
    return v(name);
  }
  /** A mutable local initialised to `init`. */
  local(prefix: string, init: Expr): string {
    const name = this.fresh(prefix);
    this.emit({ k: 'let', name, value: init });
    return name;
  }

  private scoped(kind: 'for' | 'if', stmts: Stmt[], declared: string[], fn: () => void): void {
    this.scopes.push({ memo: new Map(), kind, stmts, declared: new Set(declared) });
    fn();
    this.scopes.pop();
  }
  /** Emits a block statement and writes its bodies with `fill` while it is open. */
  private open(s: Stmt, fill: () => void): void {
    this.emit(s);
    const sc = this.scopes[this.scopes.length - 1]!;
    const prev = sc.open;
    sc.open = s;
    fill();
    sc.open = prev;
  }
  /** for (let name = 0; name < n; name++) { fn() } with its own memo scope. */
  loop(name: string, n: Expr, fn: () => void): void {
    const s: Stmt = { k: 'for', v: name, n, body: [] };
    this.open(s, () => this.scoped('for', s.body, [name], fn));
  }
  /** if (c) { then() } else { otherwise() }, each branch its own memo scope. */
  ifElse(c: Expr, then: () => void, otherwise?: () => void): void {
    const s = { k: 'if' as const, c, then: [] as Stmt[], ...(otherwise ? { else: [] as Stmt[] } : {}) };
    this.open(s, () => {
      this.scoped('if', s.then, [], then);
      if (otherwise) this.scoped('if', s.else!, [], otherwise);
    });
  }
  /** A value computed only under `cond` (else `otherwise`): `let g = otherwise; if (cond) { g = … }`. */
  guarded(cond: Expr, otherwise: Expr, fn: () => Expr): Expr {
    const g = this.local('g', otherwise);
    this.ifElse(cond, () => this.emit({ k: 'set', name: g, value: fn() }));
    return v(g);
  }

  /** The value of node `id` at element `idx` (one index expression per axis). */
  val(id: number, idx: readonly Expr[]): Expr {
    const key = `${id}@${idx.map(exprKey).join(',')}`;
    for (let i = this.scopes.length - 1; i >= 0; i--) {
      const hit = this.scopes[i]!.memo.get(key);
      if (hit !== undefined) return hit;
    }
    // Loop-invariant code motion: a value whose index uses nothing declared inside the enclosing
    // `for` loops is computed before them (e.g. an embedding row's token id, read once rather than
    // once per step of the dot product that reads the row).
    const names = new Set<string>();
    for (const e of idx) for (const n of exprUses(e).vars) names.add(n);
    let target = this.scopes.length - 1;
    while (target > 0 && this.scopes[target]!.kind === 'for' && ![...this.scopes[target]!.declared].some((d) => names.has(d))) target--;
    if (target === this.scopes.length - 1) return this.valHere(key, id, idx);
    const inner = this.scopes.splice(target + 1);
    try {
      return this.valHere(key, id, idx);
    } finally {
      this.scopes.push(...inner);
    }
  }

  private valHere(key: string, id: number, idx: readonly Expr[]): Expr {
    const n = this.g.get(id);
    const buf = this.read(n, idx);
    const value = this.bind(buf !== undefined ? buf : this.compute(n, idx));
    this.scopes[this.scopes.length - 1]!.memo.set(key, value);
    return value;
  }

  /** `q = floor((i + 0.5) / d)` and `r = i − q·d`: the +0.5 guards against an inexact division on GPUs. */
  divmod(i: Expr, d: Expr): [Expr, Expr] {
    const q = this.bind(call('floor', bin('/', bin('+', i, f(0.5)), d.k === 'i' ? f(d.v) : d)), 'q');
    return [q, this.bind(sub(i, mul(q, d)), 'r')];
  }

  private compute(n: Node, idx: readonly Expr[]): Expr {
    const last = idx.length - 1;
    const withLast = (j: Expr) => [...idx.slice(0, last), j];
    switch (n.op) {
      case 'rows': {
        const { start } = n.attrs as OpAttrs['rows'];
        return this.val(n.inputs[0], [add(idx[0]!, int(start)), ...idx.slice(1)]);
      }
      case 'cols': {
        const { start } = n.attrs as OpAttrs['cols'];
        return this.val(n.inputs[0], [idx[0]!, add(idx[1]!, int(start))]);
      }
      case 'const':
        return f((n.attrs as OpAttrs['const']).value);
      case 'unsqueeze': {
        const { axis } = n.attrs as OpAttrs['unsqueeze'];
        return this.val(n.inputs[0], [...idx.slice(0, axis), ...idx.slice(axis + 1)]);
      }
      case 'split_heads': {
        const h = dimExpr(n.shape[n.shape.length - 1]);
        return this.val(n.inputs[0], [...idx.slice(0, -2), add(mul(idx[last - 1]!, h), idx[last]!)]);
      }
      case 'merge_heads': {
        const x = this.g.get(n.inputs[0]);
        const [q, r] = this.divmod(idx[last]!, dimExpr(x.shape[x.shape.length - 1]));
        return this.val(x.id, [...idx.slice(0, -1), q, r]);
      }
      case 'einsum':
        return this.einsum(n, idx);
      case 'slice': {
        const { start } = n.attrs as OpAttrs['slice'];
        return this.val(n.inputs[0], withLast(add(idx[last]!, int(start))));
      }
      case 'concat': {
        const a = this.g.get(n.inputs[0]);
        const da = a.shape[a.shape.length - 1] as number;
        const c = this.local('c', f(0));
        this.ifElse(
          bin('<', idx[last]!, int(da)),
          () => this.emit({ k: 'set', name: c, value: this.val(a.id, idx) }),
          () => this.emit({ k: 'set', name: c, value: this.val(n.inputs[1], withLast(sub(idx[last]!, int(da)))) }),
        );
        return v(c);
      }
      case 'flatten': {
        const x = this.g.get(n.inputs[0]);
        const [q, r] = this.divmod(idx[1]!, int(x.shape[x.shape.length - 1] as number));
        return this.val(x.id, [idx[0]!, q, r]);
      }
      case 'gather': {
        const id = this.val(n.inputs[1], idx.slice(0, last));
        return this.val(n.inputs[0], [id, idx[last]!]);
      }
      case 'matmul': {
        const w = this.g.get(n.inputs[1]);
        const acc = this.local('acc', f(0));
        const k = this.fresh('k');
        this.loop(k, int(w.shape[1] as number), () => {
          const xv = this.val(n.inputs[0], withLast(v(k)));
          const wv = this.val(w.id, [idx[last]!, v(k)]);
          this.emit({ k: 'set', name: acc, add: true, value: bin('*', xv, wv) });
        });
        if ((n.attrs as OpAttrs['matmul']).bias) return bin('+', v(acc), this.val(n.inputs[2], [idx[last]!]));
        return v(acc);
      }
      case 'unary': {
        const x = this.val(n.inputs[0], idx);
        switch ((n.attrs as OpAttrs['unary']).fn) {
          case 'tanh': return call('tanh', x);
          case 'sigmoid': return call('sigmoid', x);
          case 'relu': return call('max', x, f(0));
          case 'one_minus': return bin('-', f(1), x);
          case 'half': return bin('*', f(0.5), x);
          case 'sqrt': return call('sqrt', x);
          case 'gelu': return bin('*', bin('*', x, f(0.5)), bin('+', f(1), this.erf(bin('*', x, f(0.7071067811865476)))));
          case 'exp': return call('exp', x);
          case 'step': return sel(bin('>', x, f(0)), f(1), f(0));
          // Φ(x) + x·φ(x)
          case 'gelu_grad': return bin('+', bin('*', f(0.5), bin('+', f(1), this.erf(bin('*', x, f(0.7071067811865476))))), bin('*', bin('*', x, f(0.3989422804014327)), call('exp', bin('*', f(-0.5), bin('*', x, x)))));
        }
        throw new Error('internal: unary');
      }
      case 'binary': {
        // NumPy broadcasting: operand axis j of rank r is output axis (rank - r + j); size 1 repeats
        const operand = (id: number) => {
          const sh = this.g.get(id).shape;
          return this.val(id, sh.map((d, j) => (d === 1 ? int(0) : idx[idx.length - sh.length + j]!)));
        };
        const a = operand(n.inputs[0]);
        const b = operand(n.inputs[1]);
        const fn = (n.attrs as OpAttrs['binary']).fn;
        if (fn === 'max') return call('max', a, b);
        return bin(({ add: '+', mul: '*', sub: '-', div: '/' } as const)[fn], a, b);
      }
      case 'dropout':
        return bin('*', this.val(n.inputs[0], idx), this.val(n.inputs[1], idx));
      case 'mask': {
        const { axis, causal } = n.attrs as OpAttrs['mask'];
        const len = this.val(n.inputs[1], [idx[0]!]);
        return this.guarded(validKey(idx[axis]!, len, causal ? idx[axis - 1]! : undefined), f(0), () => this.val(n.inputs[0], idx));
      }
      case 'positions':
        return bin('+', idx[1]!, this.val(n.inputs[0], [idx[0]!]));
      // --- reverse mode's ops (src/passes/grad): zero padding, broadcasting, a history shifted a
      // step, segments of k steps and back, every k-th step, steps back out of features
      case 'pad': {
        const { axis, start } = n.attrs as OpAttrs['pad'];
        const x = this.g.get(n.inputs[0]);
        const j = idx[axis]!;
        const inside = bin('&&', bin('>=', j, int(start)), bin('<', j, add(int(start), dimExpr(x.shape[axis]))));
        return this.guarded(inside, f(0), () => this.val(x.id, idx.map((e, i) => (i === axis ? sub(e, int(start)) : e))));
      }
      case 'broadcast': {
        const sh = this.g.get(n.inputs[0]).shape;
        return this.val(n.inputs[0], sh.map((d, j) => (d === 1 ? int(0) : idx[idx.length - sh.length + j]!)));
      }
      case 'shift': {
        const { reverse } = n.attrs as OpAttrs['shift'];
        const L = dimExpr(n.shape[1]);
        const from = this.bind(reverse ? add(idx[1]!, int(1)) : sub(idx[1]!, int(1)), 'from');
        const inside = reverse ? bin('<', from, L) : bin('>=', from, int(0));
        const before = n.inputs.length > 1 ? () => this.val(n.inputs[1], [idx[0]!, idx[2]!]) : () => f(0);
        const r = this.local('sh', f(0));
        this.ifElse(inside, () => this.emit({ k: 'set', name: r, value: this.val(n.inputs[0], [idx[0]!, from, idx[2]!]) }), () => this.emit({ k: 'set', name: r, value: before() }));
        return v(r);
      }
      case 'segments': {
        const { k } = n.attrs as OpAttrs['segments'];
        const x = this.g.get(n.inputs[0]);
        const [q, r] = this.divmod(idx[2]!, dimExpr(x.shape[2]));
        const t = this.bind(add(mul(idx[1]!, int(k)), q), 'st');
        return this.guarded(bin('<', t, dimExpr(x.shape[1])), f(0), () => this.val(x.id, [idx[0]!, t, r]));
      }
      case 'unsegment': {
        const { k } = n.attrs as OpAttrs['unsegment'];
        const [q, r] = this.divmod(idx[1]!, int(k));
        return this.val(n.inputs[0], [idx[0]!, q, add(mul(r, dimExpr(n.shape[2])), idx[2]!)]);
      }
      case 'every': {
        const { k, offset } = n.attrs as OpAttrs['every'];
        const x = this.g.get(n.inputs[0]);
        const t = this.bind(add(mul(idx[1]!, int(k)), int(offset)), 'et');
        const lastStep = sub(dimExpr(x.shape[1]), int(1));
        return this.val(x.id, [idx[0]!, this.bind(sel(bin('<', t, lastStep), t, lastStep), 'et'), idx[2]!]);
      }
      case 'unflatten':
        return this.val(n.inputs[0], [idx[0]!, add(mul(idx[1]!, dimExpr(n.shape[2])), idx[2]!)]);
      case 'unpool':
        return this.unpool(n, idx);
      case 'scatter_add': {
        // Σ over every id equal to this row (the host form scatters instead: host.ts)
        const ids = this.g.get(n.inputs[0]);
        const acc = this.local('acc', f(0));
        const loops = ids.shape.map(() => this.fresh('k'));
        const nest = (d: number): void => {
          if (d < loops.length) return this.loop(loops[d]!, dimExpr(ids.shape[d]), () => nest(d + 1));
          const at = loops.map((l) => v(l));
          this.ifElse(bin('===', this.val(ids.id, at), idx[0]!), () => this.emit({ k: 'set', name: acc, add: true, value: this.val(n.inputs[1], [...at, idx[1]!]) }));
        };
        nest(0);
        return v(acc);
      }
      case 'time_concat': {
        // [B, P, W] then [B, T, W]
        const tc = this.local('tc', f(0));
        this.ifElse(
          bin('<', idx[1]!, scalar('P')),
          () => this.emit({ k: 'set', name: tc, value: this.val(n.inputs[0], idx) }),
          () => this.emit({ k: 'set', name: tc, value: this.val(n.inputs[1], [idx[0]!, sub(idx[1]!, scalar('P')), idx[2]!]) }),
        );
        return v(tc);
      }
      case 'sinusoid': {
        const p = this.val(n.inputs[0], idx.slice(0, last));
        const i = idx[last]!;
        const parity = this.bind(bin('-', i, bin('*', f(2), call('floor', bin('/', bin('+', i, f(0.5)), f(2))))), 'par');
        const raw = this.bind(bin('*', p, this.val(n.inputs[1], [i])), 'ang');
        // reduced to [-π, π): GPU sin/cos lose accuracy on larger arguments
        const twoPi = f(6.283185307179586);
        const angle = this.bind(bin('-', raw, bin('*', twoPi, call('floor', bin('/', bin('+', raw, f(3.141592653589793)), twoPi)))), 'ang');
        const pe = this.local('pe', f(0));
        this.ifElse(
          bin('<', parity, f(0.5)),
          () => this.emit({ k: 'set', name: pe, value: call('sin', angle) }),
          () => this.emit({ k: 'set', name: pe, value: call('cos', angle) }),
        );
        return v(pe);
      }
      default:
        throw new Error(`internal: '${n.op}' (%${n.id}) cannot be computed inline`);
    }
  }

  /** One element of an einsum: output letters are fixed by `idx`, the others are summed in nested loops. */
  private einsum(n: Node, idx: readonly Expr[]): Expr {
    const { spec, scale } = n.attrs as OpAttrs['einsum'];
    const [lhs, out] = spec.split('->') as [string, string];
    const operands = lhs.split(',');
    const bound = new Map<string, Expr>([...out].map((c, i) => [c, idx[i]!]));
    const sizes = new Map<string, Expr>();
    operands.forEach((letters, i) => [...letters].forEach((c, j) => sizes.set(c, dimExpr(this.g.get(n.inputs[i]!).shape[j]))));
    const reduced = [...sizes.keys()].filter((c) => !bound.has(c));
    const acc = this.local('acc', f(0));
    const loop = (depth: number): void => {
      if (depth === reduced.length) {
        const vals = operands.map((letters, i) => this.val(n.inputs[i]!, [...letters].map((c) => bound.get(c)!)));
        this.emit({ k: 'set', name: acc, add: true, value: vals.reduce((p, x) => bin('*', p, x)) });
        return;
      }
      const c = reduced[depth]!;
      const k = this.fresh('k');
      bound.set(c, v(k));
      this.loop(k, sizes.get(c)!, () => loop(depth + 1));
    };
    loop(0);
    return scale === 1 ? v(acc) : bin('*', v(acc), f(scale));
  }

  /** Pool's transpose at [b, t, d]: see OpAttrs['unpool']. */
  private unpool(n: Node, idx: readonly Expr[]): Expr {
    const { mode, split } = n.attrs as OpAttrs['unpool'];
    const [b, t, d] = idx as [Expr, Expr, Expr];
    const g = () => this.val(n.inputs[0], [b, d]);
    // the row's length, read only where the mode needs it
    const len = () => this.val(n.inputs[1], [b]);
    switch (mode) {
      case 'first':
        return this.guarded(bin('===', t, int(0)), f(0), g);
      case 'last': {
        const at = bin('===', t, sub(len(), int(1)));
        const where = split === undefined ? at : bin('||', bin('&&', bin('<', d, int(split)), at), bin('&&', bin('>=', d, int(split)), bin('===', t, int(0))));
        return this.guarded(where, f(0), g);
      }
      case 'mean':
        return this.guarded(bin('<', t, len()), f(0), () => bin('/', g(), len()));
      case 'max': {
        // the first valid step holding the maximum gets it all
        const rowLen = len();
        const best = this.local('best', int(0));
        const top = this.local('top', f(-3.0e38));
        const k = this.fresh('k');
        this.loop(k, dimExpr(n.shape[1]), () => {
          const x = this.val(n.inputs[2], [b, v(k), d]);
          this.ifElse(bin('&&', bin('<', v(k), rowLen), bin('>', x, v(top))), () => {
            this.emit({ k: 'set', name: top, value: x });
            this.emit({ k: 'set', name: best, value: v(k) });
          });
        });
        return this.guarded(bin('===', t, v(best)), f(0), g);
      }
    }
  }

  /** erf(x), Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), as plain arithmetic every backend has. */
  private erf(x: Expr): Expr {
    const a = this.bind(x, 'ex');
    const s = this.bind(sel(bin('<', a, f(0)), f(-1), f(1)), 'es');
    const z = this.bind(call('abs', a), 'ez');
    const t = this.bind(bin('/', f(1), bin('+', f(1), bin('*', f(0.3275911), z))), 'et');
    let poly = bin('-', bin('*', f(1.061405429), t), f(1.453152027));
    poly = bin('+', bin('*', poly, t), f(1.421413741));
    poly = bin('-', bin('*', poly, t), f(0.284496736));
    poly = bin('+', bin('*', poly, t), f(0.254829592));
    poly = bin('*', poly, t);
    return bin('*', s, bin('-', f(1), bin('*', poly, call('exp', bin('*', neg(z), z)))));
  }
}

/**
 * Whether key position `k` is valid for row lengths `len`: k < len, or with a query index `q`
 * (causal self-attention over a key cache) (k < len or k ≥ P0) and k ≤ q + P.
 */
export function validKey(k: Expr, len: Expr, q?: Expr): Expr {
  if (!q) return bin('<', k, len);
  return bin('&&', bin('||', bin('<', k, len), bin('>=', k, scalar('P0'))), bin('<=', k, bin('+', q, scalar('P'))));
}
