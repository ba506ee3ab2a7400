/**
 * The base printer every renderer shares: kernel IR statements and expressions (src/codegen/kir.ts)
 * as JavaScript text, parenthesised by precedence (so the tree's evaluation order is the text's),
 * with the few things that differ per target in a small table (tinygrad's CStyleLanguage): how a
 * buffer read is written, and how tanh and sigmoid are computed. gpu.js's GLSL `tanh` overflows to
 * NaN for |x| > 44, so GPU kernels use an overflow-safe form; CPU kernels call the runtime's float32
 * tanh and sigmoid (a rational approximation within 2 float32 ulps: src/runtime/host.ts), about twice
 * as fast as Math.tanh and Math.exp, whose double precision a float32 result cannot use.
 */
import { bin, call, f, neg, type Buf, type Expr, type Fn, type Stmt } from '../kir.ts';

/** The runtime namespace generated modules import (`import * as __nnc from 'nnc/runtime'`). */
export const RT = '__nnc';

export interface Target {
  readonly name: 'cpu' | 'gpu';
  /** Buffer reads are asserted defined (`x[i]!`: the CPU's strict TypeScript; every index is in range by construction). */
  readonly assertReads: boolean;
  /** A function call as text, or a rewrite of it into other expressions. */
  fn(fn: Fn, args: readonly Expr[]): string | Expr;
}

export const CPU: Target = {
  name: 'cpu',
  assertReads: true,
  fn: (fn) => (fn === 'tanh' || fn === 'sigmoid' ? `${RT}.${fn}f` : `Math.${fn}`),
};

export const GPU: Target = {
  name: 'gpu',
  assertReads: false,
  fn: (fn, args) => {
    const x = args[0]!;
    // tanh x = 1 − 2 / (e^{2x} + 1) and σ(x) = 1 / (1 + e^{−x}): finite for every x
    if (fn === 'tanh') return bin('-', f(1), bin('/', f(2), bin('+', call('exp', bin('*', f(2), x)), f(1))));
    if (fn === 'sigmoid') return bin('/', f(1), bin('+', f(1), call('exp', neg(x))));
    return `Math.${fn}`;
  },
};

/**
 * A float literal that parses as a float in JavaScript and in gpu.js's GLSL for every finite value:
 * a point in the mantissa always (`1.0`, `1.0e+21`, `2.5e-8`), the shortest digits that round-trip.
 */
export function floatLiteral(x: number): string {
  if (!Number.isFinite(x)) throw new Error(`internal: the non-finite number ${x} cannot be a literal`);
  const s = String(x);
  const e = s.indexOf('e');
  const mantissa = e < 0 ? s : s.slice(0, e);
  const withPoint = mantissa.includes('.') ? mantissa : `${mantissa}.0`;
  return e < 0 ? withPoint : withPoint + s.slice(e);
}

export function intLiteral(x: number): string {
  if (!Number.isSafeInteger(x)) throw new Error(`internal: ${x} is not a safe integer literal`);
  return String(x);
}

export function bufName(b: Buf): string {
  switch (b.k) {
    case 'arg':
      return `b${b.i}`;
    case 'out':
      return 'out';
    case 'scratch':
      return `gm${b.i}`;
    case 'row':
      return 'dst';
  }
}

const PREC: Readonly<Record<string, number>> = {
  '||': 3, '&&': 4, '===': 8, '!==': 8, '<': 9, '<=': 9, '>': 9, '>=': 9, '+': 11, '-': 11, '*': 12, '/': 12,
};
const UNARY = 14;
const ATOM = 20;

export class Printer {
  constructor(readonly target: Target) {}

  expr(e: Expr): string {
    return this.p(e)[0];
  }

  private p(e: Expr): [string, number] {
    switch (e.k) {
      case 'f': {
        const s = floatLiteral(e.v);
        return [s, s.startsWith('-') ? UNARY : ATOM];
      }
      case 'i':
        return [intLiteral(e.v), e.v < 0 ? UNARY : ATOM];
      case 'var':
      case 'scalar':
        return [e.name, ATOM];
      case 'thread':
        return ['this.thread.x', ATOM];
      case 'load':
        return [`${bufName(e.buf)}[${this.expr(e.index)}]${this.target.assertReads ? '!' : ''}`, ATOM];
      case 'bin': {
        const prec = PREC[e.op]!;
        const [a, pa] = this.p(e.a);
        const [b, pb] = this.p(e.b);
        return [`${pa < prec ? `(${a})` : a} ${e.op} ${pb <= prec ? `(${b})` : b}`, prec];
      }
      case 'neg':
      case 'not': {
        const [a, pa] = this.p(e.a);
        // `- -x` must not read as a decrement
        const inner = pa < UNARY || a.startsWith('-') ? `(${a})` : a;
        return [`${e.k === 'neg' ? '-' : '!'}${inner}`, UNARY];
      }
      case 'call': {
        const r = this.target.fn(e.fn, e.args);
        if (typeof r !== 'string') return this.p(r);
        return [`${r}(${e.args.map((a) => this.expr(a)).join(', ')})`, ATOM];
      }
      case 'sel': {
        const [c, pc] = this.p(e.c);
        return [`(${pc <= 2 ? `(${c})` : c} ? ${this.expr(e.a)} : ${this.expr(e.b)})`, ATOM];
      }
    }
  }

  /** Statements as lines, indented by `depth` levels of two spaces. */
  stmts(ss: readonly Stmt[], depth: number, out: string[] = []): string[] {
    const ind = '  '.repeat(depth);
    for (const s of ss) {
      switch (s.k) {
        case 'const':
        case 'let':
          out.push(`${ind}${s.k} ${s.name} = ${this.expr(s.value)};`);
          break;
        case 'set':
          out.push(`${ind}${s.name} ${s.add ? '+=' : '='} ${this.expr(s.value)};`);
          break;
        case 'store':
          out.push(`${ind}${bufName(s.buf)}[${this.expr(s.index)}] = ${this.expr(s.value)};`);
          break;
        case 'for':
          out.push(`${ind}for (let ${s.v} = 0; ${s.v} < ${this.expr(s.n)}; ${s.v}++) {`);
          this.stmts(s.body, depth + 1, out);
          out.push(`${ind}}`);
          break;
        case 'if': {
          out.push(`${ind}if (${this.expr(s.c)}) {`);
          this.stmts(s.then, depth + 1, out);
          let rest = s.else;
          // else-if chains read flat
          while (rest && rest.length === 1 && rest[0]!.k === 'if') {
            const r = rest[0] as Extract<Stmt, { k: 'if' }>;
            out.push(`${ind}} else if (${this.expr(r.c)}) {`);
            this.stmts(r.then, depth + 1, out);
            rest = r.else;
          }
          if (rest) {
            out.push(`${ind}} else {`);
            this.stmts(rest, depth + 1, out);
          }
          out.push(`${ind}}`);
          break;
        }
        case 'return':
          out.push(`${ind}return ${this.expr(s.value)};`);
          break;
        case 'block':
          out.push(`${ind}{`);
          this.stmts(s.body, depth + 1, out);
          out.push(`${ind}}`);
          break;
        case 'gemm': {
          const w = 'pack' in s.w ? `x.packs[${s.w.pack}]` : s.w.local;
          const bias = s.bias ? `${bufName(s.bias.buf)}, ${this.expr(s.bias.off)}` : 'null, 0';
          const e = (x: Expr) => this.expr(x);
          out.push(`${ind}x.gemm(${e(s.M)}, ${e(s.N)}, ${e(s.K)}, ${bufName(s.a)}, ${e(s.aOff)}, ${e(s.lda)}, ${w}, ${bias}, ${bufName(s.c)}, ${e(s.cOff)}, ${e(s.ldc)}, 0);`);
          break;
        }
        case 'pack': {
          const e = (x: Expr) => this.expr(x);
          out.push(`${ind}const ${s.name} = x.pack(${bufName(s.src)}, ${e(s.off)}, ${e(s.N)}, ${e(s.K)}, ${e(s.sn)}, ${e(s.sk)}, ${bufName(s.dst)}, ${floatLiteral(s.scale)});`);
          break;
        }
        case 'act':
          out.push(`${ind}x.act(${s.fn === 'tanh' ? 0 : 1}, ${bufName(s.buf)}, 0, ${this.expr(s.n)});`);
          break;
      }
    }
    return out;
  }
}
