import type { Span } from './span.ts';

/**
 * Offsets ↔ 1-based line/column for one source text. Line breaks are `\n`, `\r\n` and a lone `\r`
 * (the same as Chevrotain's lexer), columns count UTF-16 code units from 1.
 */
export class SourceLines {
  /** Offset where each line starts; lineStarts[0] === 0. */
  readonly lineStarts: number[] = [0];

  constructor(
    readonly text: string,
    readonly file: string,
  ) {
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 10) this.lineStarts.push(i + 1);
      else if (c === 13) {
        if (text.charCodeAt(i + 1) === 10) i++;
        this.lineStarts.push(i + 1);
      }
    }
  }

  /** 0-based line index containing `offset` (clamped into the text). */
  lineIndexOf(offset: number): number {
    const o = Math.max(0, Math.min(offset, this.text.length));
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid]! <= o) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** The span of [start, end) with 1-based line/col of `start`; offsets are clamped into the text. */
  span(start: number, end: number): Span {
    const s = Math.max(0, Math.min(start, this.text.length));
    const e = Math.max(s, Math.min(end, this.text.length));
    const li = this.lineIndexOf(s);
    return { file: this.file, start: s, end: e, line: li + 1, col: s - this.lineStarts[li]! + 1 };
  }

  /** Text of 1-based `line`, without its line break. */
  lineText(line: number): string {
    const i = line - 1;
    if (i < 0 || i >= this.lineStarts.length) return '';
    const start = this.lineStarts[i]!;
    let end = i + 1 < this.lineStarts.length ? this.lineStarts[i + 1]! : this.text.length;
    while (end > start && (this.text[end - 1] === '\n' || this.text[end - 1] === '\r')) end--;
    return this.text.slice(start, end);
  }

  /** Offset where 1-based `line` starts. */
  lineStart(line: number): number {
    return this.lineStarts[Math.max(0, Math.min(line - 1, this.lineStarts.length - 1))]!;
  }
}
