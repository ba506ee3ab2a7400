/**
 * Tokens of the `.nn` language (Chevrotain 11).
 *
 * Order matters: Chevrotain tries patterns in this order and takes the first match, so comments come
 * before anything starting with `/`, keywords before Identifier (with `longer_alt` so `models` is an
 * Identifier), and the "unterminated" forms after their well-formed versions. Tokens in the `bad`
 * group never reach the parser: `src/syntax/parse.ts` turns them into located lexer diagnostics,
 * together with Chevrotain's own "unexpected character" errors (one per run of bad characters).
 *
 * Two token categories let the parser absorb stray input and report it in one place instead of
 * relying on Chevrotain's generic re-sync recovery: `BodyJunk` (tokens that can never start a member
 * of a model or block) and `TopJunk` (everything but `model` at the top level).
 */
import { createToken, Lexer, type CustomPatternMatcherReturn, type TokenType } from 'chevrotain';

export const BAD_GROUP = 'bad';

/** Can never start a member of a model or block body. */
export const BodyJunk = createToken({ name: 'BodyJunk', pattern: Lexer.NA });
/** Anything but `model` at the top level of a file. */
export const TopJunk = createToken({ name: 'TopJunk', pattern: Lexer.NA });

export const WhiteSpace = createToken({
  name: 'WhiteSpace',
  pattern: /[ \t\r\n\f\v\uFEFF]+/,
  group: Lexer.SKIPPED,
  line_breaks: true,
});
export const LineComment = createToken({ name: 'LineComment', pattern: /\/\/[^\n\r]*/, group: Lexer.SKIPPED });
export const BlockComment = createToken({
  name: 'BlockComment',
  pattern: /\/\*[\s\S]*?\*\//,
  group: Lexer.SKIPPED,
  line_breaks: true,
});
/** `/*` with no closing `*\/`: runs to the end of the file. Reported as a diagnostic. */
export const UnterminatedComment = createToken({
  name: 'UnterminatedComment',
  pattern: /\/\*[\s\S]*/,
  group: BAD_GROUP,
  line_breaks: true,
});

/** `# ...` is not a comment here; skipped to the end of the line and reported (avoids a cascade). */
export const HashComment = createToken({ name: 'HashComment', pattern: /#[^\n\r]*/, group: BAD_GROUP });

/**
 * A name is `[A-Za-z_][A-Za-z0-9_]*`. Letters outside ASCII (`Modèle`) are read into the name too, so
 * that parse.ts reports the whole name once (E0006) instead of splitting it around a bad character.
 */
const NAME = /[A-Za-z_\p{L}][A-Za-z0-9_\p{L}\p{M}\p{N}]*/uy;
function matchName(text: string, offset: number): CustomPatternMatcherReturn | null {
  NAME.lastIndex = offset;
  const m = NAME.exec(text);
  return m === null ? null : [m[0]];
}
/**
 * Chevrotain's hint of what a name may start with, which picks the patterns it tries at a character:
 * `_`, the ASCII letters and every character of the BMP beyond ASCII but the surrogates — a superset
 * of the letters (reported) that start a name, which matchName picks out. Testing each of the 65,536
 * characters for a letter took longer than the rest of the lexer's set-up at every start. Chevrotain
 * files a character above 255 under the bucket 255 + ⌊code / 255⌋ (its lexer's
 * charCodeToOptimizedIndex), so one character per bucket registers the same buckets as all of them
 * do, and the hint is 500 characters instead of 63,000 (2–3 ms of every start).
 */
function nameStartChars(): number[] {
  const codes = ['_', ...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'].map((c) => c.charCodeAt(0));
  for (let c = 0x80; c <= 0xff; c++) codes.push(c);
  const surrogate = (c: number) => c >= 0xd800 && c <= 0xdfff;
  for (let bucket = Math.floor(256 / 255); bucket <= Math.floor(0xffff / 255); bucket++) {
    const first = Math.max(256, bucket * 255);
    const last = Math.min(0xffff, bucket * 255 + 254);
    for (let c = first; c <= last; c++) {
      if (!surrogate(c)) {
        codes.push(c);
        break;
      }
    }
  }
  return codes;
}
export const Identifier = createToken({
  name: 'Identifier',
  pattern: { exec: matchName },
  line_breaks: false,
  start_chars_hint: nameStartChars(),
  categories: [TopJunk],
});
export const Model = createToken({ name: 'Model', pattern: /model/, longer_alt: Identifier });
export const Input = createToken({ name: 'Input', pattern: /input/, longer_alt: Identifier, categories: [TopJunk] });
export const Output = createToken({ name: 'Output', pattern: /output/, longer_alt: Identifier, categories: [TopJunk] });

// Numbers: `96`, `-0.5`, `.5`, `1.`, `1e-5`, `2.5E+3`. The matcher also swallows letters, digits and dots
// glued to the number (`12px`, `1e`, `1.2.3`) so that parse.ts can report one "malformed number"
// instead of a number followed by a surprising identifier.
const NUMBER_START = /-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/y;
const NUMBER_TAIL = /[A-Za-z0-9_.]*/y;
/** The whole image of a well-formed name. */
export const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** The whole image of a well-formed number. */
export const NUMBER_RE = /^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
function matchNumber(text: string, offset: number): CustomPatternMatcherReturn | null {
  NUMBER_START.lastIndex = offset;
  if (NUMBER_START.exec(text) === null) return null;
  NUMBER_TAIL.lastIndex = NUMBER_START.lastIndex;
  NUMBER_TAIL.exec(text);
  return [text.slice(offset, NUMBER_TAIL.lastIndex)];
}
export const NumberLit = createToken({
  name: 'Number',
  pattern: { exec: matchNumber },
  line_breaks: false,
  start_chars_hint: ['-', '.', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  categories: [BodyJunk, TopJunk],
});

/** `"..."`. Single-quoted `'...'` is read too, so that parsing goes on, but parse.ts reports it. */
export const StringLit = createToken({
  name: 'String',
  pattern: /"(?:[^"\\\r\n]|\\.)*"|'(?:[^'\\\r\n]|\\.)*'/,
  categories: [BodyJunk, TopJunk],
});
/** A quote with no closing quote on its line. Reported as a diagnostic. */
export const UnterminatedString = createToken({
  name: 'UnterminatedString',
  pattern: /"(?:[^"\\\r\n]|\\.)*\\?|'(?:[^'\\\r\n]|\\.)*\\?/,
  group: BAD_GROUP,
});

export const LCurly = createToken({ name: 'LCurly', pattern: '{', categories: [BodyJunk, TopJunk] });
export const RCurly = createToken({ name: 'RCurly', pattern: '}', categories: [TopJunk] });
export const LParen = createToken({ name: 'LParen', pattern: '(', categories: [BodyJunk, TopJunk] });
export const RParen = createToken({ name: 'RParen', pattern: ')', categories: [BodyJunk, TopJunk] });
export const Equals = createToken({ name: 'Equals', pattern: '=', categories: [BodyJunk, TopJunk] });
export const Comma = createToken({ name: 'Comma', pattern: ',', categories: [BodyJunk, TopJunk] });
export const Colon = createToken({ name: 'Colon', pattern: ':', categories: [BodyJunk, TopJunk] });
/** Separates statements and declarations anywhere, the top level included (not junk anywhere). */
export const Semicolon = createToken({ name: 'Semicolon', pattern: ';' });

/** Lexing order. */
export const allTokens: TokenType[] = [
  WhiteSpace,
  LineComment,
  BlockComment,
  UnterminatedComment,
  HashComment,
  Model,
  Input,
  Output,
  Identifier,
  NumberLit,
  StringLit,
  UnterminatedString,
  LCurly,
  RCurly,
  LParen,
  RParen,
  Equals,
  Comma,
  Colon,
  Semicolon,
];

/** Every token type the parser knows, categories included. */
export const parserTokens: TokenType[] = [...allTokens, BodyJunk, TopJunk];

declare const NNC_GRAMMAR_CHECKED: boolean | undefined;
/**
 * Whether chevrotain may skip its checks of the grammar (the lexer's patterns; the parser's rules
 * for ambiguity, left recursion and the like) when it builds the lexer and the parser. The bundles
 * say so (scripts/build.ts defines NNC_GRAMMAR_CHECKED): their grammar is the one the sources build
 * with the checks in every test, and the checks were a tenth of `nnc check`'s start-up.
 */
export const GRAMMAR_CHECKED = typeof NNC_GRAMMAR_CHECKED === 'boolean' && NNC_GRAMMAR_CHECKED;

export const lexer = new Lexer(allTokens, {
  positionTracking: 'full',
  ensureOptimizations: false,
  recoveryEnabled: true,
  skipValidations: GRAMMAR_CHECKED,
});

/** How a token type reads in a message: `'}'`, `a name`, `a number`. */
export const TOKEN_DESCRIPTIONS: Readonly<Record<string, string>> = {
  Identifier: 'a name',
  Model: "'model'",
  Input: "'input'",
  Output: "'output'",
  Number: 'a number',
  String: 'a string',
  LCurly: "'{'",
  RCurly: "'}'",
  LParen: "'('",
  RParen: "')'",
  Equals: "'='",
  Comma: "','",
  Colon: "':'",
  Semicolon: "';'",
  EOF: 'end of file',
};
