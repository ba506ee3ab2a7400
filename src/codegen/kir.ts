/**
 * The kernel IR: what a fused kernel computes, as data, between fusion and text (tinygrad's kernel
 * AST, TVM's PrimFunc). A kernel is a small tree of statements and expressions over numbered
 * buffer parameters (`arg 0`, `arg 1`, …), the symbolic sizes and loop steps it uses as scalars,
 * and its output. Renderers (src/codegen/render/) turn the same kernel into the CPU's TypeScript,
 * gpu.js's per-element JavaScript and the host backends' GEMM form; what a kernel reads (which
 * arguments, which scalars, which loop indices) is found by walking this tree, never by reading
 * the rendered text. Two kernels with the same tree are the same kernel: `kernelKey` is its
 * structural identity (buffers are parameters, so a 96-block Transformer's blocks share theirs),
 * and the plan calls it with different buffers.
 */

/** Symbolic sizes (B rows, T and S lengths, P cached positions, K = P + T keys, P0 where a cache's generated part starts) and a scan's step t and previous slot tp. */
export type Scalar = 'B' | 'T' | 'S' | 'P' | 'K' | 'P0' | 't' | 'tp';
export const SCALARS: readonly Scalar[] = ['B', 'T', 'S', 'P', 'K', 'P0', 't', 'tp'];

/** A buffer a statement reads or writes: a parameter, the output, a host form's scratch buffer, or a step's row buffer. */
export type Buf =
  | { readonly k: 'arg'; readonly i: number }
  | { readonly k: 'out' }
  | { readonly k: 'scratch'; readonly i: number }
  | { readonly k: 'row' };

export type BinOp = '+' | '-' | '*' | '/' | '<' | '<=' | '>' | '>=' | '===' | '!==' | '&&' | '||';
/** Functions of float values; `tanh` and `sigmoid` render differently per target. */
export type Fn = 'exp' | 'log' | 'sqrt' | 'abs' | 'floor' | 'max' | 'sin' | 'cos' | 'tanh' | 'sigmoid';

export type Expr =
  /** A float literal. */
  | { readonly k: 'f'; readonly v: number }
  /** An integer literal (sizes, offsets). */
  | { readonly k: 'i'; readonly v: number }
  /** A local: a loop index, a temporary. */
  | { readonly k: 'var'; readonly name: string }
  | { readonly k: 'scalar'; readonly name: Scalar }
  /** gpu.js: the flat index of the element this thread computes. */
  | { readonly k: 'thread' }
  | { readonly k: 'load'; readonly buf: Buf; readonly index: Expr }
  | { readonly k: 'bin'; readonly op: BinOp; readonly a: Expr; readonly b: Expr }
  | { readonly k: 'neg'; readonly a: Expr }
  | { readonly k: 'not'; readonly a: Expr }
  | { readonly k: 'call'; readonly fn: Fn; readonly args: readonly Expr[] }
  /** c ? a : b */
  | { readonly k: 'sel'; readonly c: Expr; readonly a: Expr; readonly b: Expr };

/** A GEMM's weight operand: packed block `pack` of the call (packed at load), or an operand packed by a `pack` statement into local `name`. */
export type GemmWeight = { readonly pack: number } | { readonly local: string };

export type Stmt =
  | { readonly k: 'const'; readonly name: string; readonly value: Expr }
  | { readonly k: 'let'; readonly name: string; readonly value: Expr }
  | { readonly k: 'set'; readonly name: string; readonly value: Expr; readonly add?: boolean }
  | { readonly k: 'store'; readonly buf: Buf; readonly index: Expr; readonly value: Expr }
  /** for (let v = 0; v < n; v++) */
  | { readonly k: 'for'; readonly v: string; readonly n: Expr; readonly body: Stmt[] }
  | { readonly k: 'if'; readonly c: Expr; readonly then: Stmt[]; readonly else?: Stmt[] }
  | { readonly k: 'return'; readonly value: Expr }
  | { readonly k: 'block'; readonly body: Stmt[] }
  /** C[cOff + m·ldc + n] = bias[biasOff + n] + Σ_k A[aOff + m·lda + k] · W[n][k] (host backends). */
  | {
    readonly k: 'gemm'; readonly M: Expr; readonly N: Expr; readonly K: Expr;
    readonly a: Buf; readonly aOff: Expr; readonly lda: Expr; readonly w: GemmWeight;
    readonly bias?: { readonly buf: Buf; readonly off: Expr }; readonly c: Buf; readonly cOff: Expr; readonly ldc: Expr;
  }
  /** local `name` ← B[n][k] = scale · src[off + n·sn + k·sk], packed into `dst` for a GEMM (host backends). */
  | {
    readonly k: 'pack'; readonly name: string; readonly src: Buf; readonly off: Expr; readonly N: Expr; readonly K: Expr;
    readonly sn: Expr; readonly sk: Expr; readonly dst: Buf; readonly scale: number;
  }
  /** buf[0 .. n) ← fn of itself, over the whole array (host backends). */
  | { readonly k: 'act'; readonly fn: 'tanh' | 'sigmoid'; readonly buf: Buf; readonly n: Expr };

/** A step kernel: it computes slot t ([B, width]) of a recurrence's history [B, time, width]; padded rows are 0. */
export interface StepForm {
  /** The history's length: T or S, or ⌈T / k⌉ for a backward scan over recomputation's k-step segments (expr.ts dimExpr). */
  readonly time: Expr;
  readonly width: number;
  /**
   * A state of two equal halves (an LSTM's [h; c]): the CPU computes element j of both halves at
   * once and writes them to the row buffer (`row[j]`, `row[half + j]`), so gates shared by h and
   * c are computed once; gpu.js has one output per thread and uses the plain body.
   */
  readonly pair?: { readonly half: number; readonly body: readonly Stmt[] };
}

/**
 * A kernel's form for the host backends (TVM's out-elementwise-fusable pattern): GEMM calls on
 * weight blocks packed at load (the call site's pack list), activations over whole arrays and
 * operand packing in `prelude`, then the per-element `epilogue` over their results (absent when
 * the prelude writes the output itself).
 */
export interface HostForm {
  /** How many packed weight blocks the GEMMs read (the call site names them). */
  readonly packs: number;
  /** Sizes of the scratch buffers (scratch i). */
  readonly scratch: readonly Expr[];
  readonly prelude: readonly Stmt[];
  /** Per element, like the kernel's body (a step kernel with a pair form: the pair body). */
  readonly epilogue?: readonly Stmt[];
}

export interface Kernel {
  /** Element types of the buffer parameters, in order (a step kernel's first is its history, its last the lengths). */
  readonly params: readonly ('f32' | 'i32')[];
  /** The output's shape (a step kernel: one slot, [B, width]). */
  readonly dims: readonly Expr[];
  /** The statements computing the output element at indices i0, i1, …: they end in `return`. */
  readonly body: readonly Stmt[];
  readonly step?: StepForm;
  /**
   * An output [R, n · width] that concatenates n equal parts computed from shared values (a backward
   * LSTM step's four gate gradients): the CPU computes element j of every part at once — `body`
   * stores out[i0 · n · width + q · width + i1] for each part q — so what the parts share is computed
   * once; gpu.js has one output per thread and uses the plain body.
   */
  readonly parts?: { readonly n: number; readonly width: number; readonly body: readonly Stmt[] };
  readonly host?: HostForm;
}

// ───────────── construction ─────────────

export const f = (v: number): Expr => ({ k: 'f', v });
export const int = (v: number): Expr => ({ k: 'i', v });
export const v = (name: string): Expr => ({ k: 'var', name });
export const scalar = (name: Scalar): Expr => ({ k: 'scalar', name });
export const load = (buf: Buf, index: Expr): Expr => ({ k: 'load', buf, index });
export const call = (fn: Fn, ...args: Expr[]): Expr => ({ k: 'call', fn, args });
export const sel = (c: Expr, a: Expr, b: Expr): Expr => ({ k: 'sel', c, a, b });
export const neg = (a: Expr): Expr => ({ k: 'neg', a });
export const not = (a: Expr): Expr => ({ k: 'not', a });
export const bin = (op: BinOp, a: Expr, b: Expr): Expr => ({ k: 'bin', op, a, b });
export const ARG = (i: number): Buf => ({ k: 'arg', i });
export const OUT: Buf = { k: 'out' };
export const ROW: Buf = { k: 'row' };
export const SCRATCH = (i: number): Buf => ({ k: 'scratch', i });

/** Integer index arithmetic, folded where both sides are literals (x + 0 and x · 1 are x, x · 0 is 0). */
export function add(a: Expr, b: Expr): Expr {
  if (a.k === 'i' && b.k === 'i') return int(a.v + b.v);
  if (b.k === 'i' && b.v === 0) return a;
  if (a.k === 'i' && a.v === 0) return b;
  return bin('+', a, b);
}
export function sub(a: Expr, b: Expr): Expr {
  if (a.k === 'i' && b.k === 'i') return int(a.v - b.v);
  if (b.k === 'i' && b.v === 0) return a;
  return bin('-', a, b);
}
export function mul(a: Expr, b: Expr): Expr {
  if (a.k === 'i' && b.k === 'i') return int(a.v * b.v);
  if ((a.k === 'i' && a.v === 0) || (b.k === 'i' && b.v === 0)) return int(0);
  if (b.k === 'i' && b.v === 1) return a;
  if (a.k === 'i' && a.v === 1) return b;
  return bin('*', a, b);
}
/** The product of sizes (1 for none). */
export function product(es: readonly Expr[]): Expr {
  return es.reduce((p, e) => mul(p, e), int(1));
}

/** Row-major flat index of `idx` in a buffer of dims `dims` (0 for a scalar: a reduction to [] read by another kernel, as a backward at -O0/-O1 has). */
export function flatIndex(dims: readonly Expr[], idx: readonly Expr[]): Expr {
  if (!dims.length) return int(0);
  let e = idx[0]!;
  for (let i = 1; i < dims.length; i++) e = add(mul(e, dims[i]!), idx[i]!);
  return e;
}

// ───────────── analysis ─────────────

/** What a piece of kernel IR reads and names: found by walking it (renderers use this, never the text). */
export interface Uses {
  readonly args: Set<number>;
  readonly scalars: Set<Scalar>;
  readonly vars: Set<string>;
  readonly scratch: Set<number>;
  out: boolean;
  row: boolean;
  /** GEMMs, packing or activations: the host's routines. */
  host: boolean;
  thread: boolean;
}

export function newUses(): Uses {
  return { args: new Set(), scalars: new Set(), vars: new Set(), scratch: new Set(), out: false, row: false, host: false, thread: false };
}

function useBuf(u: Uses, b: Buf): void {
  if (b.k === 'arg') u.args.add(b.i);
  else if (b.k === 'scratch') u.scratch.add(b.i);
  else if (b.k === 'out') u.out = true;
  else u.row = true;
}

export function exprUses(e: Expr, u: Uses = newUses()): Uses {
  switch (e.k) {
    case 'f':
    case 'i':
      break;
    case 'var':
      u.vars.add(e.name);
      break;
    case 'scalar':
      u.scalars.add(e.name);
      break;
    case 'thread':
      u.thread = true;
      break;
    case 'load':
      useBuf(u, e.buf);
      exprUses(e.index, u);
      break;
    case 'bin':
      exprUses(e.a, u);
      exprUses(e.b, u);
      break;
    case 'neg':
    case 'not':
      exprUses(e.a, u);
      break;
    case 'call':
      for (const a of e.args) exprUses(a, u);
      break;
    case 'sel':
      exprUses(e.c, u);
      exprUses(e.a, u);
      exprUses(e.b, u);
      break;
  }
  return u;
}

export function stmtUses(ss: readonly Stmt[], u: Uses = newUses()): Uses {
  for (const s of ss) {
    switch (s.k) {
      case 'const':
      case 'let':
        exprUses(s.value, u);
        break;
      case 'set':
        u.vars.add(s.name);
        exprUses(s.value, u);
        break;
      case 'store':
        useBuf(u, s.buf);
        exprUses(s.index, u);
        exprUses(s.value, u);
        break;
      case 'for':
        exprUses(s.n, u);
        stmtUses(s.body, u);
        break;
      case 'if':
        exprUses(s.c, u);
        stmtUses(s.then, u);
        if (s.else) stmtUses(s.else, u);
        break;
      case 'return':
        exprUses(s.value, u);
        break;
      case 'block':
        stmtUses(s.body, u);
        break;
      case 'gemm':
        u.host = true;
        for (const e of [s.M, s.N, s.K, s.aOff, s.lda, s.cOff, s.ldc]) exprUses(e, u);
        useBuf(u, s.a);
        useBuf(u, s.c);
        if ('local' in s.w) u.vars.add(s.w.local);
        if (s.bias) {
          useBuf(u, s.bias.buf);
          exprUses(s.bias.off, u);
        }
        break;
      case 'pack':
        u.host = true;
        for (const e of [s.off, s.N, s.K, s.sn, s.sk]) exprUses(e, u);
        useBuf(u, s.src);
        useBuf(u, s.dst);
        break;
      case 'act':
        u.host = true;
        useBuf(u, s.buf);
        exprUses(s.n, u);
        break;
    }
  }
  return u;
}

/** Adds what `from` uses to `into`. */
export function mergeUses(into: Uses, from: Uses): void {
  from.args.forEach((a) => into.args.add(a));
  from.scalars.forEach((s) => into.scalars.add(s));
  from.vars.forEach((x) => into.vars.add(x));
  from.scratch.forEach((x) => into.scratch.add(x));
  into.out ||= from.out;
  into.row ||= from.row;
  into.host ||= from.host;
  into.thread ||= from.thread;
}

/** A canonical text of an expression (memo keys, structural identity): not code, and never parsed. */
export function exprKey(e: Expr): string {
  return JSON.stringify(e);
}

/**
 * A kernel's structural identity: its whole tree (buffers are numbered parameters, so the same
 * computation on different buffers has the same key). Kernels with equal keys are one kernel.
 */
export function kernelKey(k: Kernel): string {
  return JSON.stringify(k);
}

/** A short stable name for a key (FNV-1a, 32 bits, as 8 hex digits); the key itself decides identity. */
export function keyHash(key: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}
