/**
 * The statements a generated module is made of, as data, and their printer.
 *
 * The kinds are the subset of ts-morph's statement structures that module.ts uses (a variable
 * statement, an interface, a type alias, a function, raw text), and the printer makes the calls
 * ts-morph's `printStructure` makes for them on the same writer, code-block-writer (ts-morph's own,
 * with printStructure's options), so the text is ts-morph's to the byte (test/print.test.ts prints
 * every example both ways). Printing them here rather than through ts-morph keeps the TypeScript
 * compiler, which ts-morph loads with itself (~9 MB of JavaScript, most of a cold `nnc compile`), out
 * of the emitter: only `--format js` (src/emit-js.ts) needs it.
 */
import CodeBlockWriter from 'code-block-writer';

/** Writes part of a statement (an initializer) with the writer's API. */
export type WriterFunction = (writer: CodeBlockWriter) => void;

interface Declared {
  readonly name: string;
  readonly docs?: readonly string[];
  readonly isExported?: boolean;
}
/** `const name: type = initializer;` */
export interface ConstStatement extends Declared {
  readonly kind: 'const';
  readonly type?: string;
  readonly initializer: string | WriterFunction;
}
/** `interface name { property: type; … }` */
export interface InterfaceStatement extends Declared {
  readonly kind: 'interface';
  readonly properties: readonly { readonly name: string; readonly type: string; readonly docs?: readonly string[] }[];
}
/** `type name = type;` */
export interface TypeAliasStatement extends Declared {
  readonly kind: 'type';
  readonly type: string;
}
/** `function name(parameters): returnType { statements }` */
export interface FunctionStatement extends Declared {
  readonly kind: 'function';
  readonly parameters: readonly { readonly name: string; readonly type: string; readonly initializer?: string }[];
  readonly returnType: string;
  readonly statements: readonly string[];
}
/** A statement: one of the kinds above, or text written as it is. */
export type Statement = string | ConstStatement | InterfaceStatement | TypeAliasStatement | FunctionStatement;

/** printStructure's writer options (ts-morph's defaults). */
const OPTIONS = { indentNumberOfSpaces: 4, useTabs: false, newLine: '\n', useSingleQuote: false } as const;

/** @ts-morph/common's StringUtils.isWhitespaceCharCode. */
const WHITESPACE = new Set([' ', '\f', '\n', '\r', '\t', '\v', '\u00A0', '\u2028', '\u2029'].map((c) => c.charCodeAt(0)));
function isWhitespace(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (!WHITESPACE.has(s.charCodeAt(i))) return false;
  return true;
}

/** The text of a string or writer function, written on a fresh writer (ts-morph's Printer.getText). */
function textOf(text: string | WriterFunction): string {
  const w = new CodeBlockWriter(OPTIONS);
  if (typeof text === 'string') w.write(text);
  else text(w);
  return w.toString();
}

/** Whether the last character that is not whitespace is `}`. */
function lastIsCloseBrace(w: CodeBlockWriter): boolean {
  return w.iterateLastCharCodes((c) => (c === 0x7d ? true : WHITESPACE.has(c) ? undefined : false)) ?? false;
}

/** JSDoc comments, one per entry, each followed by a new line. */
function docs(w: CodeBlockWriter, entries: readonly string[] | undefined): void {
  for (const doc of entries ?? []) {
    w.closeComment();
    const lines = doc.split(/\r?\n/);
    const first = lines[0]!.length === 0 ? 1 : 0;
    w.write('/**');
    if (lines.length <= 1) w.space().write(lines[first] ?? '');
    else {
      w.newLine();
      for (let i = first; i < lines.length; i++) {
        w.write(' *');
        if (lines[i]!.length > 0) w.write(` ${lines[i]}`);
        w.newLine();
      }
    }
    w.spaceIfLastNot().write('*/');
    w.newLine();
  }
}

/** `: type` (or another separator), on a hanging indent, when there is a type. */
function typed(w: CodeBlockWriter, separator: string, type: string | undefined): void {
  if (type === undefined) return;
  const text = textOf(type);
  if (!isWhitespace(text)) w.hangingIndent(() => w.write(`${separator} ${text}`));
}

/** ` = initializer`, on a hanging indent, when there is one. */
function initialized(w: CodeBlockWriter, initializer: string | WriterFunction | undefined): void {
  if (initializer === undefined) return;
  const text = textOf(initializer);
  if (!isWhitespace(text)) w.hangingIndent(() => w.spaceIfLastNot().write(`= ${text}`));
}

/** Statements in a block (or the file): a blank line after a `}`, else a new line between them. */
function statements(w: CodeBlockWriter, list: readonly Statement[]): void {
  for (const s of list) {
    if (lastIsCloseBrace(w)) w.blankLineIfLastNot();
    else if (!w.isAtStartOfFirstLineOfBlock()) w.newLineIfLastNot();
    statement(w, s);
  }
}

function statement(w: CodeBlockWriter, s: Statement): void {
  if (typeof s === 'string') {
    w.write(s);
    return;
  }
  // interfaces and functions start after a blank line
  if ((s.kind === 'interface' || s.kind === 'function') && !w.isAtStartOfFirstLineOfBlock()) w.blankLineIfLastNot();
  w.closeComment();
  docs(w, s.docs);
  const exported = s.isExported ? 'export ' : '';
  switch (s.kind) {
    case 'const':
      w.hangingIndent(() => {
        w.write(`${exported}const `).closeComment().write(s.name);
        typed(w, ':', s.type);
        initialized(w, s.initializer);
        w.write(';');
      });
      break;
    case 'interface':
      w.write(`${exported}interface ${s.name}`).space().inlineBlock(() => {
        s.properties.forEach((p, i) => {
          w.conditionalNewLine(i > 0);
          w.closeComment();
          docs(w, p.docs);
          w.write(p.name);
          typed(w, ':', p.type);
          w.write(';');
        });
      });
      break;
    case 'type':
      w.write(`${exported}type ${s.name}`);
      typed(w, ' =', s.type);
      w.write(';');
      break;
    case 'function':
      w.write(`${exported}function ${s.name}(`);
      if (s.parameters.length > 1) throw new Error('internal: print.ts writes functions of at most one parameter');
      if (s.parameters.length) {
        w.hangingIndent(() => {
          for (const p of s.parameters) {
            w.closeComment();
            w.write(p.name);
            typed(w, ':', p.type);
            initialized(w, p.initializer);
          }
        });
      }
      w.write(')');
      typed(w, ':', s.returnType);
      w.space().inlineBlock(() => statements(w, s.statements));
      break;
  }
}

/** A module's text: its statements as ts-morph's printStructure prints a source file of them. */
export function printModule(list: readonly Statement[]): string {
  const w = new CodeBlockWriter(OPTIONS);
  statements(w, list);
  w.conditionalNewLine(!w.isAtStartOfFirstLineOfBlock() && !w.isLastNewLine());
  return w.toString();
}
