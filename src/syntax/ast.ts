import type { Span } from '../diagnostics/span.ts';

/** A literal or word on the right of `name =`, or a bare item. */
export type Value =
  | { readonly type: 'number'; readonly value: number; readonly raw: string; readonly span: Span }
  | { readonly type: 'word'; readonly value: string; readonly span: Span }
  | { readonly type: 'string'; readonly value: string; readonly span: Span };

/** `name = value` (name set) or a bare value (name undefined). */
export interface Item {
  readonly name?: string;
  readonly nameSpan?: Span;
  readonly value: Value;
  readonly span: Span;
}

/**
 * `[label:] kind [item (, item)*] [{ body }]` — every layer, block (`encoder`, `decoder`, `repeat`,
 * `residual`) and `decode` statement has this one form; the layer registry gives it meaning.
 */
export interface Statement {
  readonly type: 'statement';
  readonly label?: string;
  readonly labelSpan?: Span;
  readonly kind: string;
  readonly kindSpan: Span;
  readonly items: readonly Item[];
  /** Present when the statement has a `{ ... }` body. */
  readonly body?: readonly Statement[];
  /** The body was dropped for nesting too deep (E0110, reported): it is empty but not "no layers". */
  readonly bodyCut?: boolean;
  readonly span: Span;
}

/** `input NAME: tokens(vocab = V, max_len = L)` or `input NAME: vectors(dim = D)`. */
export interface InputDecl {
  readonly type: 'input';
  readonly name: string;
  readonly nameSpan: Span;
  /** `tokens`, `vectors`, or whatever the user wrote (checked later). */
  readonly form: string;
  readonly formSpan: Span;
  readonly items: readonly Item[];
  readonly span: Span;
}

/** `output NAME`. */
export interface OutputDecl {
  readonly type: 'output';
  readonly name: string;
  readonly nameSpan: Span;
  readonly span: Span;
}

export type ModelMember = InputDecl | OutputDecl | Statement;

export interface ModelDecl {
  readonly type: 'model';
  readonly name: string;
  readonly nameSpan: Span;
  readonly members: readonly ModelMember[];
  readonly span: Span;
}

export interface FileAst {
  readonly type: 'file';
  readonly file: string;
  readonly models: readonly ModelDecl[];
}
