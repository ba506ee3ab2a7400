import type { Span } from '../diagnostics/span.ts';
import type { Attrs, KindSchema } from '../layers/schema.ts';
import type { Statement, InputDecl, OutputDecl, ModelDecl } from './ast.ts';
import type { VocabData } from '../runtime/text/vocab.ts';

/**
 * The checked form of a model: every statement matched to its schema, attributes validated and
 * defaulted, and every layer/block given its weight-name scope. Produced by `check()` in check.ts.
 */
export interface ResolvedStatement {
  readonly stmt: Statement;
  readonly schema: KindSchema;
  readonly kind: string;
  /** Validated attributes with defaults filled in; absent optional attributes are undefined. */
  readonly attrs: Attrs;
  /** Which attributes the user wrote (as opposed to defaults). */
  readonly written: ReadonlySet<string>;
  /** This statement's own name in its scope: the label, or KIND + index among same-kind siblings. */
  readonly name: string;
  /** Full dotted weight prefix: enclosing scopes + name (`encoder.lstm0`, `repeat0.3.residual0`). */
  readonly path: string;
  /** Blocks: the body. For `repeat N`, `copies[i]` is the body of copy i with paths `repeat0.i.…`. */
  readonly body?: readonly ResolvedStatement[];
  readonly copies?: readonly (readonly ResolvedStatement[])[];
  readonly span: Span;
}

export interface ResolvedInput {
  readonly decl: InputDecl;
  readonly name: string;
  readonly form: 'tokens' | 'vectors';
  /** tokens: vocab (required; the file's size when it names a file), max_len; vectors: dim (required), max_len. */
  readonly attrs: Attrs;
  /** The vocabulary a tokens input declares with `vocab = "file"` (docs/text.md). */
  readonly text?: VocabData;
  readonly span: Span;
}

export interface ResolvedModel {
  readonly decl: ModelDecl;
  readonly name: string;
  readonly inputs: readonly ResolvedInput[];
  readonly output?: OutputDecl;
  /** The chain, in order (decode excluded). */
  readonly chain: readonly ResolvedStatement[];
  readonly decode?: ResolvedStatement;
  /** An n-gram model's `ngram` statement (then the chain holds only it; docs/ngram.md). */
  readonly ngram?: ResolvedStatement;
  readonly span: Span;
}

export interface ResolvedFile {
  readonly file: string;
  readonly models: readonly ResolvedModel[];
}
