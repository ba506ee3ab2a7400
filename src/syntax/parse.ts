/**
 * Text → AST. Never throws: every problem in the text becomes a located diagnostic, and the AST holds
 * whatever could be understood (see visitor.ts for how damaged nodes look).
 *
 *   lex (grammar/tokens.ts) → bound nesting → parse (grammar/parser.ts) → CST → AST (visitor.ts)
 */
import type { IRecognitionException, IToken } from 'chevrotain';
import { EOF } from 'chevrotain';
import { isRealToken, tokEnd, nnParser } from '../../grammar/parser.ts';
import { BAD_GROUP, HashComment, Identifier, LCurly, StringLit, lexer, NAME_RE, NUMBER_RE, NumberLit, RCurly, UnterminatedComment, UnterminatedString } from '../../grammar/tokens.ts';
import { DiagnosticBag, type Diagnostic } from '../diagnostics/diagnostic.ts';
import { SourceLines } from '../diagnostics/source.ts';
import type { FileAst } from './ast.ts';
import { AstBuilder } from './visitor.ts';

/** Syntax diagnostics reported per file before giving up with one E0005. */
export const MAX_SYNTAX_ERRORS = 50;
/** Deeper `{` nesting is cut off (E0110) so that recursion in the parser and checker stays bounded. */
export const MAX_NESTING = 64;

/**
 * The largest source nnc reads: 1 MiB of UTF-8. Real specs are a few kilobytes (the 96-block
 * Transformer, written out without `repeat`, is about 40 KB); a larger text is refused with E0007
 * before it is lexed, and the CLI reads no more of a file than this.
 */
export const MAX_SOURCE_BYTES = 1 << 20;

/** E0007, at the start of `file`: its source is larger than MAX_SOURCE_BYTES. */
export function sourceTooLarge(file: string): Diagnostic {
  return {
    code: 'E0007',
    severity: 'error',
    message: `this file is larger than ${MAX_SOURCE_BYTES} bytes (1 MiB), the most a .nn file may hold`,
    span: { file, start: 0, end: 0, line: 1, col: 1 },
    suggestion: 'a spec is a few kilobytes: write a stack of layers once inside repeat N { ... }, or split the models into several files',
  };
}

/** Bytes of `s` in UTF-8. */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c < 0xdc00 && i + 1 < s.length ? (i++, 4) : 3;
  }
  return n;
}

export interface ParseResult {
  readonly ast: FileAst;
  readonly diagnostics: Diagnostic[];
}

export function parse(text: string, file: string): ParseResult {
  if (text.length > MAX_SOURCE_BYTES || utf8Length(text) > MAX_SOURCE_BYTES) return { ast: { type: 'file', file, models: [] }, diagnostics: [sourceTooLarge(file)] };
  const src = new SourceLines(text, file);
  try {
    return parseUnsafe(src);
  } catch (e) {
    // A bug in the front end, not a problem with the user's text. Tests fuzz for this never to happen.
    const message = e instanceof Error ? e.message : String(e);
    return {
      ast: { type: 'file', file, models: [] },
      diagnostics: [{ code: 'E0900', severity: 'error', message: `internal error while parsing: ${message}`, span: src.span(0, 0) }],
    };
  }
}

/** `'@'`, `'\u0000'`: a run of characters as it reads in a message. */
function showChars(s: string): string {
  const shown = s.length > 16 ? s.slice(0, 16) : s;
  let out = '';
  for (const ch of shown) {
    const cp = ch.codePointAt(0)!;
    out += cp < 0x20 || cp === 0x7f || cp === 0xfffd || (cp >= 0x80 && cp < 0xa0) ? `\\u{${cp.toString(16)}}` : ch;
  }
  return `'${out}${s.length > 16 ? '…' : ''}'`;
}

function parseUnsafe(src: SourceLines): ParseResult {
  const bag = new DiagnosticBag();
  const lexed = lexer.tokenize(src.text);

  // Lexer problems: runs of unknown characters, unterminated strings/comments, malformed numbers.
  for (const e of lexed.errors) {
    const chars = src.text.slice(e.offset, e.offset + Math.max(1, e.length ?? 1));
    const what = chars.length === 1 ? 'character' : 'characters';
    const quote = chars.length === 1 && chars === '`';
    bag.error('E0001', `unexpected ${what} ${showChars(chars)}`, src.span(e.offset, e.offset + chars.length), {
      ...(quote ? { suggestion: 'strings use double quotes: "..."' } : {}),
    });
  }
  for (const t of lexed.groups[BAD_GROUP] ?? []) {
    if (t.tokenType === UnterminatedComment) {
      bag.error('E0003', "unterminated block comment: '/*' has no closing '*/'", src.span(t.startOffset, t.startOffset + 2), {
        suggestion: "close the comment with '*/'",
      });
    } else if (t.tokenType === HashComment) {
      bag.error('E0001', "'#' does not start a comment in .nn files", src.span(t.startOffset, t.startOffset + 1), {
        suggestion: "use '//' for a line comment (the rest of this line was skipped)",
      });
    } else if (t.tokenType === UnterminatedString) {
      bag.error('E0002', "unterminated string: no closing '\"' on this line", src.span(t.startOffset, tokEnd(t)), {
        suggestion: "close the string with '\"' before the end of the line",
      });
    }
  }
  for (const t of lexed.tokens) {
    if (t.tokenType === StringLit && t.image.startsWith("'")) {
      bag.error('E0002', 'strings use double quotes', src.span(t.startOffset, tokEnd(t)), {
        suggestion: `write "${t.image.slice(1, -1)}"`,
      });
    }
    if (t.tokenType === Identifier && !NAME_RE.test(t.image)) {
      const bad = [...t.image].find((ch) => !/[A-Za-z0-9_]/.test(ch))!;
      const ascii = t.image.normalize('NFD').replace(/\p{M}/gu, '');
      const fix = NAME_RE.test(ascii) ? ascii : undefined;
      bag.error('E0006', `name '${t.image}' has a character outside A-Z, a-z, 0-9 and _: ${showChars(bad)}`, src.span(t.startOffset, tokEnd(t)), {
        suggestion: fix ? `names are ASCII: write '${fix}'` : 'names are ASCII: use only A-Z, a-z, 0-9 and _',
      });
    }
    if (t.tokenType === NumberLit && !NUMBER_RE.test(t.image)) {
      bag.error('E0004', `malformed number '${t.image.length > 24 ? `${t.image.slice(0, 24)}…` : t.image}'`, src.span(t.startOffset, tokEnd(t)), {
        suggestion: 'numbers look like 96, -0.5, .5 or 1e-5; put a space or comma between a number and a name',
      });
    }
  }
  // An unterminated string still reads as a string (to the end of its line), so that one missing
  // quote gives one message and not a cascade about the tokens on the next line.
  const unterminated = (lexed.groups[BAD_GROUP] ?? []).filter((t) => t.tokenType === UnterminatedString);
  for (const t of unterminated) {
    t.tokenType = StringLit;
    t.tokenTypeIdx = StringLit.tokenTypeIdx!;
  }
  const all = unterminated.length > 0 ? [...lexed.tokens, ...unterminated].sort((a, b) => a.startOffset - b.startOffset) : lexed.tokens;
  const cut = new Set<IToken>();
  const tokens = boundNesting(all, src, bag, cut);

  const cst = nnParser.parseTokens(tokens);
  const tokenIndex = new Map(tokens.map((t, i) => [t, i]));
  addParserErrors(nnParser.errors, src, bag);

  const blamed = nnParser.errors.map((e) => e.token).filter(isRealToken);
  const ast = new AstBuilder(src, tokenIndex, tokens, bag, blamed, cut).file(cst);
  return { ast, diagnostics: finish(bag.items) };
}

/**
 * Drops what is inside braces nested deeper than MAX_NESTING, with one E0110. The braces of such a
 * block stay (so its statement still has its `{ ... }` body, emptied); they are added to `cut`, and the
 * statement is marked `bodyCut` so that no follow-on error is reported about its body.
 */
function boundNesting(tokens: IToken[], src: SourceLines, bag: DiagnosticBag, cut: Set<IToken>): IToken[] {
  let depth = 0;
  let reported = false;
  const out: IToken[] = [];
  for (const t of tokens) {
    if (t.tokenType === LCurly) {
      depth++;
      if (depth > MAX_NESTING + 1) continue;
      if (depth === MAX_NESTING + 1) {
        if (!reported) {
          bag.error('E0110', `blocks nested more than ${MAX_NESTING} levels deep`, src.span(t.startOffset, tokEnd(t)), {
            suggestion: 'what is inside this block is skipped',
          });
          reported = true;
        }
        cut.add(t);
      }
    } else if (t.tokenType === RCurly && depth > 0) {
      depth--;
      if (depth > MAX_NESTING) continue;
    } else if (depth > MAX_NESTING) continue;
    out.push(t);
  }
  return out;
}

function addParserErrors(errors: IRecognitionException[], src: SourceLines, bag: DiagnosticBag): void {
  let eofReported = false;
  for (const e of errors) {
    const info = nnParser.takeErrorInfo(e.message) ?? { code: 'E0108', message: e.message };
    const tok = e.token;
    const prev = (e as { previousToken?: IToken }).previousToken;
    const atEof = !isRealToken(tok);
    // After one complaint at the end of the file, only further unclosed blocks are worth reporting.
    if (atEof && eofReported && info.code !== 'E0102') continue;
    if (atEof) eofReported = true;
    const span = isRealToken(tok)
      ? src.span(tok.startOffset, tokEnd(tok))
      : isRealToken(prev)
        ? src.span(tokEnd(prev), tokEnd(prev))
        : src.span(src.text.length, src.text.length);
    const message = tok.tokenType === EOF || !isRealToken(tok) ? info.message.replace(/, found end of file$/, ' before the end of the file') : info.message;
    bag.error(info.code, message, span, {
      ...(info.noteAt && isRealToken(info.noteAt.token)
        ? { notes: [{ message: info.noteAt.message, span: src.span(info.noteAt.token.startOffset, tokEnd(info.noteAt.token)) }] }
        : {}),
      ...(info.suggestion ? { suggestion: info.suggestion } : {}),
    });
  }
}

/** Sorts by position (stable) and caps the count. */
function finish(items: Diagnostic[]): Diagnostic[] {
  const sorted = items
    .map((d, i) => ({ d, i }))
    // At one position, "unclosed block" comes after the more specific complaint.
    .sort((a, b) => a.d.span.start - b.d.span.start || Number(a.d.code === 'E0102') - Number(b.d.code === 'E0102') || a.i - b.i)
    .map((x) => x.d);
  if (sorted.length <= MAX_SYNTAX_ERRORS) return sorted;
  const kept = sorted.slice(0, MAX_SYNTAX_ERRORS);
  kept.push({
    code: 'E0005',
    severity: 'error',
    message: `too many errors (${sorted.length}); stopped reporting after ${MAX_SYNTAX_ERRORS}`,
    span: sorted[MAX_SYNTAX_ERRORS]!.span,
  });
  return kept;
}
