/**
 * `nnc fmt`: the canonical layout of a `.nn` file.
 *
 *   - one declaration or statement per line, two spaces of indent per block level, `;` dropped;
 *   - `name = value` with spaces around `=`, `, ` between items, `input x: tokens(vocab = 96)`,
 *     `label: kind`, ` {` on the statement's line and `}` on its own;
 *   - comments kept where they are: a comment on its own line stays on its own line (indented with
 *     what follows it), one after code on the same line stays there after one space; a line comment
 *     inside a statement continues the statement on the next line, indented two levels;
 *   - one blank line kept where the file had one or more between members, none after `{` or before
 *     `}`; one blank line between models; the file ends with one newline.
 *
 * It reorders nothing and changes no token but `;`: the formatted file is the same token sequence
 * laid out again, so it parses to the same AST (test/fmt.test.ts checks the IR is identical for every
 * example and fixture). Statement starts come from the parser's AST, so a statement split over lines
 * in the input (items after a `,` on the next line) is joined onto one. A file with syntax errors is
 * not formatted: its structure is unknown; the errors are returned instead.
 */
import type { IToken } from 'chevrotain';
import { lexer } from '../grammar/tokens.ts';
import type { Diagnostic } from './diagnostics/diagnostic.ts';
import type { ModelMember, Statement } from './syntax/ast.ts';
import { parse } from './syntax/parse.ts';

export interface FormatResult {
  /** The formatted text; undefined when the file has syntax errors. */
  readonly output?: string;
  /** Syntax errors that stopped formatting. */
  readonly diagnostics: readonly Diagnostic[];
}

/** A token of the file, comments included. */
export interface Tok {
  readonly type: string;
  readonly image: string;
  readonly start: number;
  readonly end: number;
}

const INDENT = '  ';

/** The lexer's tokens with the comments between them (the lexer skips comments). */
export function tokensWithComments(text: string): Tok[] {
  const out: Tok[] = [];
  let pos = 0;
  const gap = (end: number) => {
    const re = /\/\/[^\n\r]*|\/\*[\s\S]*?\*\//g;
    const s = text.slice(pos, end);
    for (const m of s.matchAll(re)) {
      out.push({ type: m[0].startsWith('//') ? 'LineComment' : 'BlockComment', image: m[0], start: pos + m.index, end: pos + m.index + m[0].length });
    }
  };
  for (const t of lexer.tokenize(text).tokens as IToken[]) {
    gap(t.startOffset);
    out.push({ type: t.tokenType.name, image: t.image, start: t.startOffset, end: t.startOffset + t.image.length });
    pos = t.startOffset + t.image.length;
  }
  gap(text.length);
  return out;
}

/** Where each model and member starts, and with which line-start role. */
function starts(text: string, file: string): { diagnostics: Diagnostic[]; models: Set<number>; members: Set<number> } {
  const { ast, diagnostics } = parse(text, file);
  const models = new Set<number>();
  const members = new Set<number>();
  const member = (m: ModelMember | Statement): void => {
    members.add(m.span.start);
    if (m.type === 'statement') m.body?.forEach(member);
  };
  for (const m of ast.models) {
    models.add(m.span.start);
    m.members.forEach(member);
  }
  return { diagnostics: diagnostics.filter((d) => d.severity === 'error'), models, members };
}

/** Spacing between two tokens on one line. */
function space(prev: Tok, cur: Tok): string {
  if (prev.type === 'LParen') return '';
  if (cur.type === 'RParen' || cur.type === 'Comma' || cur.type === 'Colon') return '';
  if (cur.type === 'LParen' && prev.type === 'Identifier') return '';
  return ' ';
}

export function format(text: string, file = '<input>'): FormatResult {
  const { diagnostics, models, members } = starts(text, file);
  if (diagnostics.length) return { diagnostics };
  const toks = tokensWithComments(text);
  const lines: string[] = [];
  let line = '';
  let depth = 0;
  let prev: Tok | undefined;
  const newlineIn = (a: number, b: number) => /[\n\r]/.test(text.slice(a, b));
  const blankIn = (a: number, b: number) => /(?:\r\n|\r(?!\n)|\n)[ \t\f\v]*(?:\r\n|\r|\n)/.test(text.slice(a, b));
  const flush = () => {
    if (line !== '') lines.push(line.trimEnd());
    line = '';
  };
  /** Starts a new line at `level`, after one blank line when `blank`. */
  const open = (level: number, blank: boolean) => {
    flush();
    if (blank && lines.length && lines[lines.length - 1] !== '') lines.push('');
    line = INDENT.repeat(level);
  };
  const afterOpenBrace = () => prev?.type === 'LCurly';
  /** Inside a member, past its first token and before its `{` (a comment here continues it). */
  let mid = false;
  // for each token, the next one that is neither a comment nor a `;`
  const nextCode: (Tok | undefined)[] = [];
  for (let i = toks.length - 1, next: Tok | undefined; i >= 0; i--) {
    nextCode[i] = next;
    if (!/Comment$|^Semicolon$/.test(toks[i]!.type)) next = toks[i];
  }
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i]!;
    if (t.type === 'Semicolon') {
      mid = false;
      continue;
    }
    const first = prev === undefined;
    const gapBlank = prev !== undefined && blankIn(prev.end, t.start);
    if (t.type === 'LineComment' || t.type === 'BlockComment') {
      const next = nextCode[i];
      const continues = mid && next !== undefined && !members.has(next.start) && !models.has(next.start) && next.type !== 'RCurly';
      if (first || newlineIn(prev!.end, t.start)) {
        // on its own line: indented like what follows it
        open(continues ? depth + 2 : depth, !first && ((gapBlank && !afterOpenBrace()) || (depth === 0 && prev?.type === 'RCurly')));
        line += t.image;
      } else {
        line += ' ' + t.image;
      }
      if (t.type === 'LineComment') {
        flush();
        if (continues) line = INDENT.repeat(depth + 2);
      }
      prev = t;
      continue;
    }
    if (models.has(t.start)) {
      open(0, !first && (gapBlank || prev?.type === 'RCurly'));
      line += t.image;
      mid = true;
    } else if (members.has(t.start)) {
      open(depth, gapBlank && !afterOpenBrace());
      line += t.image;
      mid = true;
    } else if (t.type === 'LCurly') {
      line += (line.trim() === '' ? '' : ' ') + '{';
      depth++;
      mid = false;
    } else if (t.type === 'RCurly') {
      depth--;
      mid = false;
      if (prev?.type === 'LCurly') line += '}';
      else {
        open(depth, false);
        line += '}';
      }
    } else if (line.trim() === '') {
      line += t.image;
    } else {
      line += space(prev!, t) + t.image;
    }
    prev = t;
  }
  flush();
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  return { output: lines.length ? lines.join('\n') + '\n' : '', diagnostics: [] };
}
