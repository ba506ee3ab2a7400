/**
 * A stable, indented text dump of the AST (`nnc compile --emit=ast`, golden tests). One node per line,
 * each with the line:col where it starts, two spaces of indent per level:
 *
 *   file examples/charlm.nn
 *     model CharLM @2:1
 *       input text: tokens @3:3
 *         item vocab = number 96 @3:22
 *       output next @4:3
 *       statement lstm @7:3
 *         item hidden = number 256 @7:8
 *         item word bidirectional @7:22
 *       statement enc: repeat @9:3
 *         item number 2 @9:15
 *         body
 *           statement lstm @10:5
 *
 * Numbers show their text and, when it differs, the parsed value (`number 1e-5 (0.00001)`); an item
 * whose value was lost to a syntax error shows `missing`, a lost name `<missing>`.
 */
import type { Span } from '../diagnostics/span.ts';
import type { FileAst, Item, ModelMember, Statement, Value } from './ast.ts';

const at = (s: Span): string => `@${s.line}:${s.col}`;

function showValue(v: Value): string {
  switch (v.type) {
    case 'number':
      return String(v.value) === v.raw ? `number ${v.raw}` : `number ${v.raw} (${v.value})`;
    case 'word':
      return v.value === '' ? 'missing' : `word ${v.value}`;
    case 'string':
      return `string ${JSON.stringify(v.value)}`;
  }
}

function showItem(item: Item): string {
  return item.name !== undefined ? `item ${item.name} = ${showValue(item.value)} ${at(item.span)}` : `item ${showValue(item.value)} ${at(item.span)}`;
}

function printStatement(s: Statement, depth: number, out: string[]): void {
  const pad = '  '.repeat(depth);
  const label = s.label !== undefined ? `${s.label}: ` : '';
  out.push(`${pad}statement ${label}${s.kind === '' ? '<missing>' : s.kind} ${at(s.span)}`);
  for (const item of s.items) out.push(`${pad}  ${showItem(item)}`);
  if (s.body !== undefined) {
    out.push(`${pad}  body`);
    for (const child of s.body) printStatement(child, depth + 2, out);
  }
}

function printMember(m: ModelMember, depth: number, out: string[]): void {
  const pad = '  '.repeat(depth);
  switch (m.type) {
    case 'input':
      out.push(`${pad}input ${m.name || '<missing>'}: ${m.form || '<missing>'} ${at(m.span)}`);
      for (const item of m.items) out.push(`${pad}  ${showItem(item)}`);
      return;
    case 'output':
      out.push(`${pad}output ${m.name || '<missing>'} ${at(m.span)}`);
      return;
    case 'statement':
      printStatement(m, depth, out);
  }
}

export function printAst(ast: FileAst): string {
  const out = [`file ${ast.file}`];
  for (const model of ast.models) {
    out.push(`  model ${model.name || '<missing>'} ${at(model.span)}`);
    for (const m of model.members) printMember(m, 2, out);
  }
  return `${out.join('\n')}\n`;
}
