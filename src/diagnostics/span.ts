/** A region of a source file. Lines and columns are 1-based; offsets are 0-based, end exclusive. */
export interface Span {
  readonly file: string;
  readonly start: number;
  readonly end: number;
  readonly line: number;
  readonly col: number;
}

export const NO_SPAN: Span = { file: '<none>', start: 0, end: 0, line: 0, col: 0 };

/** The smallest span covering both (same file assumed). */
export function joinSpans(a: Span, b: Span): Span {
  const first = a.start <= b.start ? a : b;
  return { file: a.file, start: first.start, end: Math.max(a.end, b.end), line: first.line, col: first.col };
}
