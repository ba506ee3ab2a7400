/**
 * What the compiler's lowering says about each statement of a spec, for the tools that show it
 * (`nnc graph`, the language server's hover): the shape of its output, its parameters, and the
 * dataflow between statements. Nothing here infers a shape: everything is read off the IR that
 * `lower()` (src/driver.ts) builds, through the span of the statement every IR node carries.
 *
 *   - A node belongs to the statement whose span is exactly its span (layers lower with their
 *     statement's span). Nodes with a block's span (a residual's sum, a decoder's initial state and
 *     bridge) or the model's (the output mask) belong to no statement: dataflow passes through them.
 *   - An edge joins two statements when a node of one reads a value of the other (through such
 *     pass-through nodes, and from a recurrence's body to the values it captures). Its shape is what
 *     the reading side receives. Weights, lengths and other bookkeeping inputs are not edges.
 *   - `repeat N` lowers its body N times with the same spans; the copies fold onto one drawing of
 *     the body, and the edges from copy i to copy i + 1 are dropped (the block says × N instead).
 */
import type { Span } from './diagnostics/span.ts';
import type { WeightEntry } from './ir/build.ts';
import type { Graph, Node, Shape } from './ir/graph.ts';
import type { ModelIR } from './ir/model.ts';
import type { OpAttrs, OpName } from './ir/ops.ts';
import type { FileAst, InputDecl, ModelDecl, OutputDecl, Statement } from './syntax/ast.ts';

/** Where a dataflow edge starts or ends: a model input, a statement (by span start), the output. */
export type Endpoint =
  | { readonly kind: 'input'; readonly decl: InputDecl }
  | { readonly kind: 'statement'; readonly stmt: Statement }
  | { readonly kind: 'output'; readonly decl?: OutputDecl; readonly name: string };

export interface FlowEdge {
  readonly from: Endpoint;
  readonly to: Endpoint;
  /** What the reading side receives (symbolic dims B, T, S). */
  readonly shape: Shape;
}

export interface StatementFacts {
  readonly stmt: Statement;
  /** Enclosing block statements, outermost first. */
  readonly blocks: readonly Statement[];
  /** The shape of its result in the model's graph (undefined when it computes nothing: dropout, decode). */
  readonly output?: Shape;
  /** Attention placed before a recurrent layer runs inside that layer's time loop: its result per step. */
  readonly perStep?: Shape;
  /** The recurrent layer whose time loop runs it (with perStep). */
  readonly loop?: Statement;
  /** How many times it is lowered: the product of the counts of the `repeat`s around it. */
  readonly copies: number;
  /** Its weights (all copies of a `repeat`), in load order; for a block, those of the block itself (a decoder's bridge). */
  readonly weights: readonly WeightEntry[];
  readonly params: number;
}

export interface ModelFacts {
  readonly ir: ModelIR;
  readonly decl: ModelDecl;
  /** Every statement, blocks included, by span start. */
  readonly statements: ReadonlyMap<number, StatementFacts>;
  readonly edges: readonly FlowEdge[];
  readonly params: number;
}

/** Ops that are not data a statement hands to another (weights, lengths, positions bookkeeping). */
const BOOKKEEPING: ReadonlySet<OpName> = new Set<OpName>(['param', 'rows', 'cols', 'const', 'lengths', 'pos_offsets', 'key_lengths', 'sin_freqs', 'cache', 'state']);

const key = (s: Span) => `${s.start}:${s.end}`;
export const elements = (shape: readonly number[]): number => shape.reduce((a, d) => a * d, 1);

/** Facts for every model of a file that lowered. */
export function describeModels(models: readonly ModelIR[], ast: FileAst): ModelFacts[] {
  return models.flatMap((ir) => {
    const decl = ast.models.find((m) => m.span.start === ir.span.start);
    return decl ? [describeModel(ir, decl)] : [];
  });
}

function describeModel(ir: ModelIR, decl: ModelDecl): ModelFacts {
  // statements by span, with their enclosing blocks
  const bySpan = new Map<string, { stmt: Statement; blocks: Statement[] }>();
  const inputs = new Map<string, InputDecl>();
  let output: OutputDecl | undefined;
  const visit = (s: Statement, blocks: Statement[]): void => {
    bySpan.set(key(s.span), { stmt: s, blocks });
    s.body?.forEach((c) => visit(c, [...blocks, s]));
  };
  for (const m of decl.members) {
    if (m.type === 'statement') visit(m, []);
    else if (m.type === 'input') inputs.set(key(m.span), m);
    else output = m;
  }
  const leaf = (n: Node): Statement | undefined => {
    const s = bySpan.get(key(n.span))?.stmt;
    return s && s.body === undefined ? s : undefined;
  };

  // every node of the model, bodies included, with the scan whose body holds it
  const nodes = new Map<number, { node: Node; scan?: Node }>();
  const collect = (g: Graph, scan?: Node): void => {
    for (const n of g.nodes.values()) {
      nodes.set(n.id, { node: n, ...(scan ? { scan } : {}) });
      const body = (n.attrs as { body?: Graph }).body;
      if (body) collect(body, n);
    }
  };
  collect(ir.graph);

  /** The inputs a node reads, with a body's step and captures resolved to the scan's operands. */
  const reads = (id: number): number[] => {
    const { node, scan } = nodes.get(id)!;
    if (scan && node.op === 'step') return [scan.inputs[0]!];
    if (scan && node.op === 'capture') {
      const a = scan.attrs as OpAttrs['scan'];
      return [scan.inputs[2 + (a.init ? 1 : 0) + (node.attrs as OpAttrs['capture']).input]!];
    }
    return node.inputs;
  };
  const endpointOf = (n: Node): Endpoint | undefined => {
    if (n.op === 'capture' || n.op === 'step') return undefined;
    const s = leaf(n);
    if (s) return { kind: 'statement', stmt: s };
    const i = n.op === 'input' ? inputs.get(key(n.span)) : undefined;
    return i ? { kind: 'input', decl: i } : undefined;
  };
  /** The endpoints whose values reach `id` through pass-through nodes. */
  const memo = new Map<number, Endpoint[]>();
  const sources = (id: number): Endpoint[] => {
    const known = memo.get(id);
    if (known) return known;
    memo.set(id, []);
    const n = nodes.get(id)!.node;
    let out: Endpoint[] = [];
    if (!BOOKKEEPING.has(n.op)) {
      const e = endpointOf(n);
      out = e ? [e] : reads(id).flatMap(sources);
    }
    memo.set(id, out);
    return out;
  };

  const edges = new Map<string, FlowEdge>();
  const name = (e: Endpoint) => (e.kind === 'statement' ? `s${e.stmt.span.start}` : e.kind === 'input' ? `i${e.decl.span.start}` : 'out');
  const inRepeatBackwards = (from: Endpoint, to: Endpoint): boolean => {
    if (from.kind !== 'statement' || to.kind !== 'statement' || from.stmt.span.start <= to.stmt.span.start) return false;
    // a later statement feeding an earlier one: the next copy of an enclosing repeat
    return bySpan.get(key(to.stmt.span))!.blocks.some((b) => b.kind === 'repeat' && b.span.start <= from.stmt.span.start && from.stmt.span.end <= b.span.end);
  };
  const addEdge = (from: Endpoint, to: Endpoint, shape: Shape): void => {
    if (from.kind === 'statement' && to.kind === 'statement' && from.stmt === to.stmt) return;
    if (inRepeatBackwards(from, to)) return;
    const k = `${name(from)}>${name(to)}`;
    if (!edges.has(k)) edges.set(k, { from, to, shape });
  };
  for (const { node } of nodes.values()) {
    const to = endpointOf(node);
    if (!to || to.kind !== 'statement') continue;
    for (const i of reads(node.id)) {
      const inNode = nodes.get(i)!.node;
      if (BOOKKEEPING.has(inNode.op)) continue;
      for (const from of sources(i)) addEdge(from, to, inNode.shape);
    }
  }
  const out = ir.graph.outputs.find((o) => o.name === ir.output.name);
  if (out) {
    const sink: Endpoint = { kind: 'output', name: ir.output.name, ...(output ? { decl: output } : {}) };
    for (const from of sources(out.node)) addEdge(from, sink, nodes.get(out.node)!.node.shape);
  }

  // per statement: the last node it adds to the model's graph, and its last node inside a loop body
  const last = new Map<string, Node>();
  const lastInBody = new Map<string, { node: Node; scan: Node }>();
  for (const { node, scan } of [...nodes.values()].sort((a, b) => a.node.id - b.node.id)) {
    if (BOOKKEEPING.has(node.op) || node.op === 'capture' || node.op === 'step') continue;
    const k = key(node.span);
    if (!bySpan.has(k)) continue;
    if (scan) {
      // a recurrent layer's own step is summarised by the scan; an attention placed before it is not
      if (key(scan.span) !== k) lastInBody.set(k, { node, scan });
    } else last.set(k, node);
  }
  const weightsBy = new Map<string, WeightEntry[]>();
  for (const w of ir.weights) {
    const k = key(w.span);
    weightsBy.set(k, [...(weightsBy.get(k) ?? []), w]);
  }
  const statements = new Map<number, StatementFacts>();
  for (const [k, { stmt, blocks }] of bySpan) {
    const weights = weightsBy.get(k) ?? [];
    const inLoop = lastInBody.get(k);
    // attention before a recurrent layer: what it adds to the model's graph is the key side, computed once per source
    const outNode = stmt.body ? lastOfBlock(stmt, last) : inLoop ? undefined : last.get(k);
    const loop = inLoop ? bySpan.get(key(inLoop.scan.span))?.stmt : undefined;
    statements.set(stmt.span.start, {
      stmt, blocks, weights,
      params: weights.reduce((a, w) => a + elements(w.shape), 0),
      copies: blocks.reduce((a, b) => a * (b.kind === 'repeat' ? repeatCount(b) : 1), 1),
      ...(outNode ? { output: outNode.shape } : {}),
      ...(inLoop ? { perStep: inLoop.node.shape } : {}),
      ...(loop ? { loop } : {}),
    });
  }
  return { ir, decl, statements, edges: [...edges.values()], params: ir.weights.reduce((a, w) => a + elements(w.shape), 0) };
}

/** A block's result: its own last node (a residual's sum), else its last statement's result. */
function lastOfBlock(block: Statement, last: ReadonlyMap<string, Node>): Node | undefined {
  const own = last.get(key(block.span));
  if (own && block.kind === 'residual') return own;
  for (const s of [...(block.body ?? [])].reverse()) {
    const n = s.body ? lastOfBlock(s, last) : last.get(key(s.span));
    if (n) return n;
  }
  return undefined;
}

/** N of `repeat N` (the checker has made it a positive integer). */
export function repeatCount(s: Statement): number {
  const item = s.items.find((i) => i.name === undefined || i.name === 'count');
  return item?.value.type === 'number' ? item.value.value : 1;
}

/** `[B, T, 256]`. */
export function showShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/** `1,234,567`. */
export function showCount(n: number): string {
  return n.toLocaleString('en-US');
}
