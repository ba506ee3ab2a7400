import type { Span } from './span.ts';

export type Severity = 'error' | 'warning' | 'note';

/** One message about the user's spec. `code` is stable across releases (see docs/diagnostics.md). */
export interface Diagnostic {
  readonly code: string;
  readonly severity: Severity;
  readonly message: string;
  readonly span: Span;
  /** Extra located remarks ("defined here", ...). */
  readonly notes?: readonly { message: string; span?: Span }[];
  /** A concrete fix, shown as "help: ...". */
  readonly suggestion?: string;
}

/** Collects diagnostics; passes never throw for user errors, they report here and carry on. */
export class DiagnosticBag {
  readonly items: Diagnostic[] = [];
  error(code: string, message: string, span: Span, extra: { notes?: Diagnostic['notes']; suggestion?: string } = {}): void {
    this.items.push({ code, severity: 'error', message, span, ...extra });
  }
  warning(code: string, message: string, span: Span, extra: { notes?: Diagnostic['notes']; suggestion?: string } = {}): void {
    this.items.push({ code, severity: 'warning', message, span, ...extra });
  }
  add(d: Diagnostic): void {
    this.items.push(d);
  }
  get hasErrors(): boolean {
    return this.items.some((d) => d.severity === 'error');
  }
}

