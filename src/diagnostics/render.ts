/**
 * Diagnostics as text. The format is a contract (tested outside this repo):
 *
 *   examples/x.nn:3:3: error: unknown layer 'lstn' — did you mean 'lstm'? [E0201]
 *       3 |   lstn hidden = 256
 *         |   ^^^^
 *     note: examples/x.nn:2:3: first defined here
 *     help: replace 'lstn' with 'lstm'
 *
 * The caret line covers the span on its first line (at least one caret, clamped to the line's end).
 * Tabs are expanded to 4-column stops, control characters shown as '�', and lines longer than
 * MAX_SHOWN columns are cut to a window around the span with '…'.
 */
import type { Diagnostic } from './diagnostic.ts';
import { SourceLines } from './source.ts';
import type { Span } from './span.ts';

const TAB = 4;
const MAX_SHOWN = 120;
const GUTTER = 5;

function where(span: Span): string {
  return span.line > 0 ? `${span.file}:${span.line}:${span.col}` : span.file;
}

/** The line as displayed, and the display column of each offset in it (length + 1 entries). */
function displayLine(text: string): { shown: string; colOf: number[] } {
  let shown = '';
  const colOf: number[] = [];
  for (let i = 0; i < text.length; i++) {
    colOf.push(shown.length);
    const c = text.charCodeAt(i);
    if (c === 9) shown += ' '.repeat(TAB - (shown.length % TAB));
    else if (c < 0x20 || c === 0x7f || (c >= 0x80 && c < 0xa0)) shown += '\ufffd';
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      shown += text[i]! + text[i + 1]!;
      colOf.push(shown.length - 1);
      i++;
    } else if (c >= 0xd800 && c <= 0xdfff) shown += '\ufffd';
    else shown += text[i];
  }
  colOf.push(shown.length);
  return { shown, colOf };
}

function snippet(span: Span, src: SourceLines): string[] {
  if (span.line < 1 || span.line > src.lineStarts.length) return [];
  const raw = src.lineText(span.line);
  const lineStart = src.lineStart(span.line);
  const { shown, colOf } = displayLine(raw);
  const startIdx = Math.max(0, Math.min(span.start - lineStart, raw.length));
  const endIdx = Math.max(startIdx, Math.min(span.end - lineStart, raw.length));
  let from = colOf[startIdx]!;
  let to = Math.max(from + 1, colOf[endIdx]!);
  let text = shown;
  if (shown.length > MAX_SHOWN) {
    const winStart = Math.max(0, Math.min(from - 40, shown.length - MAX_SHOWN));
    const winEnd = Math.min(shown.length, winStart + MAX_SHOWN);
    text = (winStart > 0 ? '…' : '') + shown.slice(winStart, winEnd) + (winEnd < shown.length ? '…' : '');
    const shift = winStart > 0 ? winStart - 1 : 0;
    from -= shift;
    to = Math.min(to - shift, text.length + 1);
    to = Math.max(to, from + 1);
  }
  const num = String(span.line);
  const pad = ' '.repeat(Math.max(GUTTER, num.length));
  return [`${num.padStart(pad.length)} | ${text}`.trimEnd(), `${pad} | ${' '.repeat(from)}${'^'.repeat(to - from)}`];
}

export function renderDiagnostic(d: Diagnostic, sourceText: string): string {
  return render(d, new SourceLines(sourceText, d.span.file));
}

function render(d: Diagnostic, src: SourceLines): string {
  const lines = [`${where(d.span)}: ${d.severity}: ${d.message} [${d.code}]`, ...snippet(d.span, src)];
  for (const n of d.notes ?? []) lines.push(n.span ? `  note: ${where(n.span)}: ${n.message}` : `  note: ${n.message}`);
  if (d.suggestion) lines.push(`  help: ${d.suggestion}`);
  return lines.join('\n');
}

/** Every diagnostic, each followed by a newline. */
export function renderDiagnostics(list: readonly Diagnostic[], sourceText: string): string {
  const src = new SourceLines(sourceText, list[0]?.span.file ?? '');
  return list.map((d) => `${render(d, src)}\n`).join('');
}
