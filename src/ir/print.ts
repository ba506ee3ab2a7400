/** Text form of the IR, for `--emit=ir|ir-opt` and golden tests. Stable: ids, then attributes in key order. */
import type { Graph, Node } from './graph.ts';
import type { ModelIR } from './model.ts';

function attrText(n: Node): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(n.attrs as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b))) {
    if (v === undefined || k === 'body') continue;
    parts.push(`${k}=${typeof v === 'string' ? JSON.stringify(v) : String(v)}`);
  }
  return parts.length ? ` {${parts.join(', ')}}` : '';
}

function line(n: Node): string {
  const ins = n.inputs.map((i) => `%${i}`).join(', ');
  const where = n.span.line ? `  @${n.span.line}:${n.span.col}` : '';
  return `%${n.id} = ${n.op}${ins ? ' ' + ins : ''}${attrText(n)} : [${n.shape.join(', ')}]${n.dtype === 'i32' ? ' i32' : ''}  # ${n.label}${where}`;
}

/** `gemm`: per kernel root, how the host backends run its matmuls (codegen's GEMM forms), printed under the kernel. */
export function printGraph(g: Graph, indent = '  ', inBody = false, gemm?: ReadonlyMap<number, readonly string[]>): string {
  const out: string[] = [];
  for (const n of g.ordered()) {
    out.push(indent + line(n));
    const a = n.attrs as { body?: Graph };
    if (a.body) {
      out.push(`${indent}  body {`);
      out.push(printGraph(a.body, indent + '    ', true, gemm).trimEnd());
      out.push(`${indent}  }`);
    }
  }
  for (const k of g.kernels ?? []) {
    const root = g.get(k.root);
    const what = root.op === 'scan' ? 'loop over t' : k.members.length > 1 ? `fused(${k.members.map((i) => `%${i}`).join(' ')})` : root.op;
    const when = k.weightsOnly ? ', only when attention weights are reported' : inBody ? ', once per time step' : '';
    out.push(`${indent}kernel k${k.root} = ${k.tiled !== undefined ? 'attention in tiles ' : ''}${what} -> %${k.root}${when}  # ${root.label}`);
    for (const note of gemm?.get(k.root) ?? []) out.push(`${indent}  host: ${note}`);
  }
  for (const o of g.outputs) out.push(`${indent}${o.name === 'next' ? 'yield' : 'output ' + o.name + ' ='} %${o.node}`);
  return out.join('\n') + '\n';
}

export function printModel(m: ModelIR, gemm?: ReadonlyMap<number, readonly string[]>): string {
  const inputs = m.inputs.map((i) => `${i.name}: ${i.form}(${i.form === 'tokens' ? `vocab=${i.vocab}` : `dim=${i.dim}`}${i.maxLen ? `, max_len=${i.maxLen}` : ''})`).join(', ');
  return `model ${m.name}(${inputs}) -> ${m.output.name}\n${printGraph(m.graph, '  ', false, gemm)}`;
}
