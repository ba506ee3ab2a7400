/**
 * `nnc graph`: a spec's architecture as a Graphviz graph (DOT), laid out and drawn by Graphviz
 * (compiled to WebAssembly: @hpcc-js/wasm-graphviz) as SVG, or an HTML page holding that SVG.
 *
 * Every layer is a node (its kind, attributes and parameter count); `encoder`, `decoder`, `repeat`
 * and `residual` are clusters around their layers (a repeat's body is drawn once, marked × N); every
 * edge is labelled with the shape the reading layer receives, with the symbolic dims B, T and S. A
 * decoder's attention reads the encoder memory (a blue dashed edge) and its recurrent layers start
 * from the encoder's final state (an orange dotted edge). With `kernels`, the kernels that fuse
 * several layers are outlined. Everything comes from the lowering (src/architecture.ts).
 */
import type { Span } from './diagnostics/span.ts';
import type { Graph } from './ir/graph.ts';
import { STATEMENT_SCHEMAS } from './layers/schemas.ts';
import { elements, repeatCount, showCount, showShape, type Endpoint, type FlowEdge, type ModelFacts } from './architecture.ts';
import type { Item, Statement } from './syntax/ast.ts';

export type GraphFormat = 'dot' | 'svg' | 'html';

export interface GraphOptions {
  /** Outline the kernels that fuse several layers (the models must have been optimised). */
  readonly kernels?: boolean;
  /** The spec's file name, for titles. */
  readonly file: string;
}

/** One name Graphviz knows metrics for (it sizes text with built-in metrics; browsers map it to Arial or Liberation Sans). */
const FONT = 'Helvetica';
/** Node fill per layer family (src/layers/*.schema.ts). */
const FILL: Readonly<Record<string, string>> = {
  embedding: '#fff3c4', recurrent: '#dbeafe', attention: '#fde2e2', dense: '#e3f2e5',
  activation: '#f1f1f1', sequence: '#ece6f6',
};
const BLOCK_STYLE: Readonly<Record<string, string>> = {
  encoder: 'style="rounded,filled" fillcolor="#f2f7ff" color="#8fb0dd"',
  decoder: 'style="rounded,filled" fillcolor="#fff6ec" color="#e0ad72"',
  repeat: 'style="rounded,dashed,filled" fillcolor="#f7f7f7" color="#999999"',
  residual: 'style="rounded,filled" fillcolor="#ffffff" color="#b0b0b0"',
};

/** Text for a DOT HTML-like label. */
function html(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
/** A DOT quoted string. */
function quoted(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

function itemText(i: Item): string {
  const v = i.value.type === 'number' ? i.value.raw : i.value.type === 'string' ? JSON.stringify(i.value.value) : i.value.value;
  return i.name !== undefined ? `${i.name} = ${v}` : v;
}

const small = (s: string) => `<font point-size="9" color="#555555">${s}</font>`;
/** A parameter count; inside `repeat`s, per copy. */
const params = (n: number, copies = 1) => (!n ? '' : copies > 1 ? `${showCount(n / copies)} params × ${copies}` : `${showCount(n)} params`);

function nodeId(e: Endpoint, model: number): string {
  return e.kind === 'statement' ? `s${e.stmt.span.start}` : e.kind === 'input' ? `i${e.decl.span.start}` : `o${model}`;
}

/**
 * The kernels of an optimised model that fuse two or more layers, as sets of statements; the
 * kernels of a repeat's copies fuse the same statements and are one entry with several names.
 */
function fusedKernels(m: ModelFacts): { names: string[]; stmts: Statement[] }[] {
  const leafAt = (s: Span) => {
    const f = m.statements.get(s.start);
    return f && f.stmt.span.end === s.end && f.stmt.body === undefined ? f.stmt : undefined;
  };
  const byStmts = new Map<string, { names: string[]; stmts: Statement[] }>();
  const walk = (g: Graph) => {
    for (const k of g.kernels ?? []) {
      const stmts = [...new Set(k.members.map((id) => leafAt(g.get(id).span)).filter((s): s is Statement => s !== undefined))].sort((a, b) => a.span.start - b.span.start);
      if (stmts.length < 2) continue;
      const key = stmts.map((s) => s.span.start).join();
      const known = byStmts.get(key);
      if (known) known.names.push(`k${k.root}`);
      else byStmts.set(key, { names: [`k${k.root}`], stmts });
    }
    for (const n of g.nodes.values()) {
      const body = (n.attrs as { body?: Graph }).body;
      if (body) walk(body);
    }
  };
  walk(m.ir.graph);
  return [...byStmts.values()];
}

/** The DOT text for the models of one file. */
export function toDot(models: readonly ModelFacts[], options: GraphOptions): string {
  const out: string[] = [
    'digraph nnc {',
    `  graph [fontname=${quoted(FONT)} fontsize=12 rankdir=TB nodesep=0.35 ranksep=0.4 compound=true newrank=true bgcolor="white" pad=0.2];`,
    `  node [fontname=${quoted(FONT)} fontsize=11 shape=box style="rounded,filled" color="#666666" penwidth=0.8 margin="0.12,0.05"];`,
    `  edge [fontname=${quoted(FONT)} fontsize=9 color="#555555" fontcolor="#333333" arrowsize=0.6 penwidth=0.8];`,
  ];
  const single = models.length === 1;
  if (single) {
    const m = models[0]!;
    out.push(`  label=<<b>${html(m.ir.name)}</b><br/>${small(`${html(options.file)} · ${showCount(m.params)} parameters`)}>; labelloc=t;`);
  }
  models.forEach((m, mi) => {
    const pad = single ? '  ' : '    ';
    if (!single) out.push(`  subgraph cluster_model${mi} {`, `    label=<<b>model ${html(m.ir.name)}</b><br/>${small(`${showCount(m.params)} parameters`)}>; style="rounded"; color="#444444";`);
    const kernels = options.kernels ? fusedKernels(m) : [];
    // a kernel is drawn as a cluster when its layers follow one another in one block, none in another such kernel
    const siblings = (s: Statement) => m.statements.get(s.span.start)!.blocks.at(-1)?.body ?? m.decl.members;
    const claimed = new Set<Statement>();
    const drawn = kernels.filter((k) => {
      const run = siblings(k.stmts[0]!);
      const at = run.indexOf(k.stmts[0]!);
      if (!k.stmts.every((s, i) => run[at + i] === s && !claimed.has(s))) return false;
      k.stmts.forEach((s) => claimed.add(s));
      return true;
    });
    // the fused kernels that could not be drawn as a cluster are named on their layers
    const kernelOf = new Map<Statement, string[]>();
    for (const k of kernels) if (!drawn.includes(k)) for (const s of k.stmts) kernelOf.set(s, [...(kernelOf.get(s) ?? []), ...k.names]);

    for (const d of m.decl.members) {
      if (d.type !== 'input') continue;
      const attrs = d.items.map(itemText).join(', ');
      out.push(`${pad}i${d.span.start} [label=<<b>${html(d.name)}</b><br/>${small(html(`input: ${d.form}(${attrs})`))}> shape=box style="rounded" color="#333333"];`);
    }
    const emitStatement = (s: Statement, indent: string): void => {
      const f = m.statements.get(s.span.start)!;
      if (s.body !== undefined) {
        const total = [...m.statements.values()].filter((x) => x.stmt.span.start >= s.span.start && x.stmt.span.end <= s.span.end).reduce((a, x) => a + x.params, 0);
        // `repeat N` reads `repeat × N`; a block's other attributes (decoder init = …) as written
        const attrs = s.kind === 'repeat' ? `× ${repeatCount(s)}` : s.items.map(itemText).join(', ');
        const title = `${s.label !== undefined ? `${html(s.label)}: ` : ''}${html(s.kind)}${attrs ? ` ${html(attrs)}` : ''}`;
        const note = [s.kind === 'residual' ? 'x + body(x)' : '', f.params ? `${params(f.params)} (${s.kind === 'decoder' ? 'bridge' : 'own'})` : '', total && total !== f.params ? `${params(total, f.copies)}${f.copies > 1 ? '' : ' in all'}` : ''].filter(Boolean).join(' · ');
        out.push(`${indent}subgraph cluster_s${s.span.start} {`);
        out.push(`${indent}  label=<${title}${note ? `  ${small(html(note))}` : ''}>; labeljust=l; ${BLOCK_STYLE[s.kind] ?? ''}`);
        emitChildren(s.body, `${indent}  `);
        out.push(`${indent}}`);
        return;
      }
      if (s.kind === 'decode') return;
      const family = STATEMENT_SCHEMAS.get(s.kind)?.family ?? '';
      // Graphviz sizes text from built-in font metrics without bold widths: bold text stays alone on its line
      const lines = [`<b>${s.label !== undefined ? `${html(s.label)}: ` : ''}${html(s.kind)}</b>`];
      if (s.items.length) lines.push(html(s.items.map(itemText).join(', ')));
      const notes = [params(f.params, f.copies)];
      if (f.perStep) notes.push(`runs in ${f.loop?.kind ?? 'the next layer'}'s steps: ${showShape(f.perStep)}`);
      if (f.output === undefined && !f.perStep) notes.push('identity at inference');
      if (kernelOf.has(s)) notes.push(`kernel ${kernelOf.get(s)!.join(', ')}`);
      const noteText = notes.filter(Boolean).map(html).join('<br/>');
      out.push(`${indent}s${s.span.start} [label=<${lines.join('<br/>')}${noteText ? `<br/>${small(noteText)}` : ''}> fillcolor=${quoted(FILL[family] ?? '#ffffff')}];`);
    };
    const emitChildren = (body: readonly Statement[], indent: string): void => {
      for (let i = 0; i < body.length; i++) {
        const k = drawn.find((x) => x.stmts[0] === body[i]);
        if (!k) {
          emitStatement(body[i]!, indent);
          continue;
        }
        const what = k.names.length > 1 ? `kernels ${k.names.join(', ')} (fused, one per copy)` : `kernel ${k.names[0]} (fused)`;
        out.push(`${indent}subgraph cluster_${k.names[0]} {`, `${indent}  label=<${small(`<font color="#c0392b">${what}</font>`)}>; labeljust=r; style="dashed,rounded"; color="#c0392b"; penwidth=1;`);
        for (const s of k.stmts) emitStatement(s, `${indent}  `);
        out.push(`${indent}}`);
        i += k.stmts.length - 1;
      }
    };
    emitChildren(m.decl.members.filter((d): d is Statement => d.type === 'statement'), pad);
    out.push(`${pad}o${mi} [label=<<b>${html(m.ir.output.name)}</b><br/>${small('output')}> shape=box style="rounded" color="#333333"];`);
    // dropout computes nothing at inference, but sits in the chain: the edge that passes it goes through it
    const facts = [...m.statements.values()].filter((f) => f.stmt.body === undefined && f.stmt.kind !== 'decode').sort((a, b) => a.stmt.span.start - b.stmt.span.start);
    const computing = facts.filter((f) => f.output !== undefined || f.perStep !== undefined).map((f) => f.stmt);
    const via = new Map<string, Statement>();
    for (const f of facts) {
      if (f.output !== undefined || f.perStep !== undefined) continue;
      const prev = computing.filter((c) => c.span.end <= f.stmt.span.start).at(-1);
      const next = computing.find((c) => c.span.start >= f.stmt.span.end);
      if (prev) via.set(`s${prev.span.start}>${next ? `s${next.span.start}` : `o${mi}`}`, f.stmt);
    }
    for (const e of m.edges) out.push(edgeLine(e, mi, pad, m, via));
  });
  if (!single) out.push('  }');
  out.push('}');
  return out.join('\n') + '\n';
}

function edgeLine(e: FlowEdge, mi: number, pad: string, m: ModelFacts, via: ReadonlyMap<string, Statement>): string {
  const inBlock = (end: Endpoint, kind: string) => end.kind === 'statement' && m.statements.get(end.stmt.span.start)!.blocks.some((b) => b.kind === kind);
  const cross = inBlock(e.from, 'encoder') && inBlock(e.to, 'decoder');
  const shape = showShape(e.shape);
  let attrs = `label=${quoted(` ${shape} `)}`;
  if (cross && e.to.kind === 'statement' && e.to.stmt.kind === 'attention') attrs = `label=${quoted(` memory ${shape} `)} color="#1f6feb" fontcolor="#1f6feb" style=dashed constraint=false`;
  else if (cross) attrs = `label=${quoted(` initial state ${shape} `)} color="#c77700" fontcolor="#c77700" style=dotted constraint=false`;
  const [from, to] = [nodeId(e.from, mi), nodeId(e.to, mi)];
  const through = via.get(`${from}>${to}`);
  if (through) return `${pad}${from} -> s${through.span.start} [${attrs}];\n${pad}s${through.span.start} -> ${to} [${attrs}];`;
  return `${pad}${from} -> ${to} [${attrs}];`;
}

/** A standalone page around the SVG. */
export function toHtml(svg: string, models: readonly ModelFacts[], file: string): string {
  const title = `${models.map((m) => m.ir.name).join(', ')} — ${file}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${html(title)}</title>
<style>
  body { font-family: Helvetica, Arial, sans-serif; margin: 1.5rem; color: #222; }
  h1 { font-size: 1.1rem; font-weight: 600; }
  table { border-collapse: collapse; font-size: 0.85rem; margin: 1rem 0; }
  td, th { padding: 0.15rem 0.8rem 0.15rem 0; text-align: left; }
  td.n { text-align: right; font-variant-numeric: tabular-nums; }
  svg { max-width: 100%; height: auto; }
</style>
</head>
<body>
<h1>${html(title)}</h1>
${svg.replace(/^<\?xml[^>]*>\s*(<!DOCTYPE[^>]*>\s*)?/, '')}
${models.map((m) => `<table><caption>${html(m.ir.name)}: weights (${showCount(m.params)} parameters)</caption>
<tr><th>name</th><th>shape</th><th class="n">parameters</th></tr>
${m.ir.weights.map((w) => `<tr><td>${html(w.name)}</td><td>${html(showShape(w.shape))}</td><td class="n">${showCount(elements(w.shape))}</td></tr>`).join('\n')}
</table>`).join('\n')}
</body>
</html>
`;
}

/** DOT → SVG with Graphviz (WebAssembly), loaded on first use. */
export async function dotToSvg(dot: string): Promise<string> {
  const { Graphviz } = await import('@hpcc-js/wasm-graphviz');
  const graphviz = await Graphviz.load();
  return graphviz.dot(dot);
}
