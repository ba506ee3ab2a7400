/**
 * The `.nn` grammar as a Chevrotain CstParser, with error recovery and human error wording.
 *
 *   file       := ( model | ';' | <stray token> )*
 *   model      := 'model' name '{' body '}'
 *   body       := ( inputDecl | outputDecl | statement | ';' | <stray token> )*
 *   inputDecl  := 'input' name ':' Identifier [ '(' [ itemList ] ')' ]
 *   outputDecl := 'output' name
 *   name       := Identifier | 'model' | 'input' | 'output'   (a keyword is reported by the visitor)
 *   statement  := [ Identifier ':' ] Identifier [ itemList ] [ '{' body '}' ]
 *   itemList   := item ( [','] item )*
 *   item       := Identifier '=' value | value
 *   value      := Number | Identifier | String
 *
 * Newlines are not significant, with one exception that keeps `softmax` + newline + `linear 96`
 * unambiguous: a statement's first item, when it is a *bare* value, must start on the same line as the
 * statement's kind (`firstItemGate`). `name = value` first items may be on any line, and so may items
 * after a comma. An Identifier followed by ':' always starts a new labelled statement.
 *
 * The grammar is deliberately a little wider than the language, so that common mistakes get precise
 * messages from the CST→AST visitor (src/syntax/visitor.ts) instead of a generic recovery:
 *   - tokens that cannot start anything (stray `=`, `)`, numbers, ...) are consumed as `junk` in a body
 *     or at the top level and reported once per run;
 *   - a missing comma between items (`lstm 256 layers = 2`) is accepted by `itemList` and reported.
 * Everything else (a missing name, value, `:` or `}`) goes through Chevrotain's recovery, with messages
 * built by `NnErrorMessages` below. The message provider returns an id; `takeErrorInfo` gives back the
 * structured diagnostic (code, message, notes) that parse.ts locates.
 */
import {
  CstParser,
  EOF,
  tokenMatcher,
  type CstNode,
  type IParserErrorMessageProvider,
  type IToken,
  type TokenType,
} from 'chevrotain';
import {
  BodyJunk,
  Colon,
  Comma,
  Equals,
  GRAMMAR_CHECKED,
  Identifier,
  Input,
  LCurly,
  LParen,
  Model,
  NumberLit,
  Output,
  parserTokens,
  RCurly,
  RParen,
  Semicolon,
  StringLit,
  TopJunk,
  TOKEN_DESCRIPTIONS,
} from './tokens.ts';

/** What a syntax error becomes; parse.ts adds the location. */
export interface SyntaxErrorInfo {
  readonly code: string;
  readonly message: string;
  /** A located remark: the token where the unclosed construct starts. */
  readonly noteAt?: { readonly message: string; readonly token: IToken };
  readonly suggestion?: string;
}

export function isRealToken(t: IToken | undefined): t is IToken {
  return t !== undefined && t.tokenType !== EOF && !t.isInsertedInRecovery && Number.isFinite(t.startOffset);
}

/** End offset (exclusive) of a token. */
export function tokEnd(t: IToken): number {
  return t.startOffset + t.image.length;
}

/** `'lstm'`, `'}'`, `end of file`. */
export function describeToken(t: IToken | undefined): string {
  if (!isRealToken(t)) return 'end of file';
  const image = t.image.length > 24 ? `${t.image.slice(0, 24)}…` : t.image;
  if (t.tokenType === StringLit) return `string ${image}`;
  return `'${image}'`;
}

function tokenDescription(tt: TokenType): string {
  return TOKEN_DESCRIPTIONS[tt.name] ?? tt.name;
}

function at(t: IToken): string {
  return `${t.startLine}:${t.startColumn}`;
}

export class NnParser extends CstParser {
  /** Syntax error infos by the id the message provider returned. */
  private infos = new Map<string, SyntaxErrorInfo>();
  private tokenIndex = new Map<IToken, number>();
  private tokenList: IToken[] = [];

  constructor() {
    const messages = new NnErrorMessages();
    super(parserTokens, {
      recoveryEnabled: true,
      nodeLocationTracking: 'full',
      maxLookahead: 3,
      errorMessageProvider: messages,
      skipValidations: GRAMMAR_CHECKED,
    });
    messages.parser = this;
    this.performSelfAnalysis();
  }

  /** Parses one token vector. The parser instance is reused across files. */
  parseTokens(tokens: IToken[]): CstNode {
    this.infos = new Map();
    this.tokenList = tokens;
    this.tokenIndex = new Map(tokens.map((t, i) => [t, i]));
    this.input = tokens;
    return this.file();
  }

  takeErrorInfo(message: string): SyntaxErrorInfo | undefined {
    return this.infos.get(message);
  }

  /** Stores an info and returns its id (the "message" Chevrotain keeps on the exception). */
  register(info: SyntaxErrorInfo): string {
    const id = `#nn-syntax-${this.infos.size}`;
    this.infos.set(id, info);
    return id;
  }

  /** The token just before `t` in the input, if any. */
  tokenBefore(t: IToken | undefined): IToken | undefined {
    if (t === undefined) return undefined;
    const i = this.tokenIndex.get(t);
    return i === undefined || i === 0 ? undefined : this.tokenList[i - 1];
  }

  /** The CST node of the rule being parsed (used to word "expected '}' to close ..."). */
  currentNode(): CstNode | undefined {
    const stack = (this as unknown as { CST_STACK?: CstNode[] }).CST_STACK;
    return stack?.[stack.length - 1];
  }

  // ---- gates -------------------------------------------------------------------------------------

  /** May the token after a statement's kind start its item list? (see the header comment) */
  private firstItemGate(): boolean {
    const next = this.LA(1);
    const kind = this.LA(0);
    if (tokenMatcher(next, Identifier)) {
      const after = this.LA(2);
      if (tokenMatcher(after, Equals)) return true;
      if (tokenMatcher(after, Colon)) return false;
      return next.startLine === kind.endLine;
    }
    if (tokenMatcher(next, NumberLit) || tokenMatcher(next, StringLit)) return next.startLine === kind.endLine;
    return false;
  }

  /** After a ',': does an item follow? (Not an Identifier that starts a labelled statement.) */
  private itemStartGate(): boolean {
    const next = this.LA(1);
    if (tokenMatcher(next, Identifier)) return !tokenMatcher(this.LA(2), Colon);
    return tokenMatcher(next, NumberLit) || tokenMatcher(next, StringLit);
  }

  /** Does the item list go on? After a ',' always; without one only for `name =` or a literal (reported). */
  private moreItemsGate(): boolean {
    const next = this.LA(1);
    if (tokenMatcher(next, Comma)) return true;
    if (tokenMatcher(next, Identifier)) return tokenMatcher(this.LA(2), Equals);
    return tokenMatcher(next, NumberLit) || tokenMatcher(next, StringLit);
  }

  // ---- rules -------------------------------------------------------------------------------------

  public file = this.RULE('file', () => {
    this.MANY(() => {
      this.OR([
        { ALT: () => this.SUBRULE(this.model) },
        { ALT: () => this.CONSUME(Semicolon) },
        { ALT: () => this.CONSUME(TopJunk, { LABEL: 'junk' }) },
      ]);
    });
  });

  public model = this.RULE('model', () => {
    this.CONSUME(Model);
    // `model input {`: a keyword as the name, reported by the visitor (the body is still read)
    const keyword = this.OPTION9({ GATE: () => tokenMatcher(this.LA(2), LCurly), DEF: () => this.keywordName() });
    if (keyword !== true) this.CONSUME(Identifier, { LABEL: 'name' });
    this.CONSUME(LCurly);
    this.SUBRULE(this.body);
    this.CONSUME(RCurly);
  });

  public body = this.RULE('body', () => {
    this.MANY(() => {
      this.OR([
        { ALT: () => this.SUBRULE(this.inputDecl) },
        { ALT: () => this.SUBRULE(this.outputDecl) },
        { ALT: () => this.SUBRULE(this.statement) },
        { ALT: () => this.CONSUME(Semicolon) },
        { ALT: () => this.CONSUME(BodyJunk, { LABEL: 'junk' }) },
      ]);
    });
  });

  public inputDecl = this.RULE('inputDecl', () => {
    this.CONSUME(Input);
    const keyword = this.OPTION9({ GATE: () => tokenMatcher(this.LA(2), Colon), DEF: () => this.keywordName() });
    if (keyword !== true) this.CONSUME(Identifier, { LABEL: 'name' });
    this.CONSUME(Colon);
    this.CONSUME2(Identifier, { LABEL: 'form' });
    this.OPTION(() => {
      this.CONSUME(LParen);
      this.OPTION2(() => this.SUBRULE(this.itemList));
      this.CONSUME(RParen);
    });
  });

  public outputDecl = this.RULE('outputDecl', () => {
    const kw = this.CONSUME(Output);
    // `output input` on one line, unless that `input` starts an input declaration (`input x:`)
    const keyword = this.OPTION9({
      GATE: () => this.LA(1).startLine === kw.endLine && !(tokenMatcher(this.LA(1), Input) && tokenMatcher(this.LA(3), Colon)),
      DEF: () => this.keywordName(),
    });
    if (keyword !== true) this.CONSUME(Identifier, { LABEL: 'name' });
  });

  /** A reserved word where a name belongs (`model input {`); labelled `keywordName` for the visitor. */
  private keywordName(): true {
    this.OR1([
      { ALT: () => this.CONSUME2(Model, { LABEL: 'keywordName' }) },
      { ALT: () => this.CONSUME2(Input, { LABEL: 'keywordName' }) },
      { ALT: () => this.CONSUME2(Output, { LABEL: 'keywordName' }) },
    ]);
    return true;
  }

  public statement = this.RULE('statement', () => {
    this.OR({
      IGNORE_AMBIGUITIES: true,
      DEF: [
        {
          GATE: () => tokenMatcher(this.LA(2), Colon),
          ALT: () => {
            this.CONSUME(Identifier, { LABEL: 'label' });
            this.CONSUME(Colon);
            // The kind may be missing (`x: }`, `x:` then `y: relu`): the visitor reports it.
            this.OPTION({
              GATE: () => !tokenMatcher(this.LA(2), Colon),
              DEF: () => this.CONSUME2(Identifier, { LABEL: 'kind' }),
            });
          },
        },
        { ALT: () => this.CONSUME3(Identifier, { LABEL: 'kind' }) },
      ],
    });
    this.OPTION2({ GATE: () => this.firstItemGate(), DEF: () => this.SUBRULE(this.itemList) });
    this.OPTION3(() => {
      this.CONSUME(LCurly);
      this.SUBRULE(this.body);
      this.CONSUME(RCurly);
    });
  });

  public itemList = this.RULE('itemList', () => {
    this.SUBRULE(this.item);
    this.MANY({
      GATE: () => this.moreItemsGate(),
      DEF: () => {
        this.OR([
          {
            ALT: () => {
              this.CONSUME(Comma);
              // A trailing ',' with nothing after it is reported by the visitor.
              this.OPTION({ GATE: () => this.itemStartGate(), DEF: () => this.SUBRULE2(this.item) });
            },
          },
          { ALT: () => this.SUBRULE3(this.item) },
        ]);
      },
    });
  });

  /** `name = [value]` or a bare value. A missing value is reported by the visitor, not by recovery. */
  public item = this.RULE('item', () => {
    this.OR({
      IGNORE_AMBIGUITIES: true,
      DEF: [
        {
          ALT: () => {
            this.CONSUME(Identifier, { LABEL: 'name' });
            this.CONSUME(Equals);
            this.OPTION(() => this.SUBRULE(this.value));
          },
        },
        { ALT: () => this.SUBRULE2(this.value) },
      ],
    });
  });

  public value = this.RULE('value', () => {
    this.OR([
      { ALT: () => this.CONSUME(NumberLit) },
      { ALT: () => this.CONSUME(Identifier) },
      { ALT: () => this.CONSUME(StringLit) },
    ]);
  });
}

/** Human wording for Chevrotain's recognition errors. */
class NnErrorMessages implements IParserErrorMessageProvider {
  parser!: NnParser;

  buildMismatchTokenMessage(o: { expected: TokenType; actual: IToken; previous: IToken; ruleName: string }): string {
    const p = this.parser;
    return p.register(this.mismatch(p, o.expected, o.actual, o.previous, o.ruleName));
  }

  private mismatch(p: NnParser, expected: TokenType, actual: IToken, previous: IToken, rule: string): SyntaxErrorInfo {
    const node = p.currentNode();
    const tok = (key: string): IToken | undefined => {
      const t = node?.children[key]?.[0] as IToken | undefined;
      return isRealToken(t) ? t : undefined;
    };
    const found = describeToken(actual);
    if (expected === RCurly) {
      if (rule === 'model') {
        const kw = tok('Model');
        const name = tok('name');
        const what = name ? `model '${name.image}'` : 'model';
        if (kw) {
          return {
            code: 'E0102',
            message: `expected '}' to close ${what} (opened at ${at(kw)})`,
            noteAt: { message: `${what} starts here`, token: kw },
          };
        }
        return { code: 'E0102', message: `expected '}' to close ${what}` };
      }
      const kind = tok('kind');
      const label = tok('label');
      const first = label ?? kind;
      const what = `${kind ? kind.image : 'the'} block${label ? ` '${label.image}'` : ''}`;
      if (first) {
        return {
          code: 'E0102',
          message: `expected '}' to close ${what} (opened at ${at(first)})`,
          noteAt: { message: `${what} starts here`, token: first },
        };
      }
      return { code: 'E0102', message: `expected '}' to close ${what}` };
    }
    if (expected === RParen) {
      const open = tok('LParen');
      const name = tok('name');
      const what = name ? `the attributes of input '${name.image}'` : 'the input attributes';
      return {
        code: 'E0102',
        message: `expected ')' to close ${what}${open ? ` (opened at ${at(open)})` : ''}, found ${found}`,
        ...(open ? { noteAt: { message: "'(' is here", token: open } } : {}),
      };
    }
    if (expected === Identifier) {
      if (rule === 'model') return { code: 'E0103', message: `expected a model name after 'model', found ${found}`, suggestion: 'write e.g. model CharLM { ... }' };
      if (rule === 'outputDecl') return { code: 'E0103', message: `expected a name after 'output', found ${found}`, suggestion: 'write e.g. output next' };
      if (rule === 'inputDecl') {
        if (tokenMatcher(previous, Colon)) {
          return { code: 'E0103', message: `expected an input form (tokens or vectors) after ':', found ${found}`, suggestion: 'write e.g. input text: tokens(vocab = 96)' };
        }
        return { code: 'E0103', message: `expected an input name after 'input', found ${found}`, suggestion: 'write e.g. input text: tokens(vocab = 96)' };
      }
      if (rule === 'statement') {
        const label = tok('label');
        return { code: 'E0103', message: `expected a layer kind after '${label ? label.image : ''}:', found ${found}` };
      }
    }
    if (expected === LCurly && rule === 'model') {
      const name = tok('name');
      return { code: 'E0104', message: `expected '{' after ${name ? `model name '${name.image}'` : "'model'"}, found ${found}` };
    }
    if (expected === Colon && rule === 'inputDecl') {
      const name = tok('name');
      const n = name ? name.image : 'x';
      return {
        code: 'E0104',
        message: `expected ':' after input name '${n}', found ${found}`,
        suggestion: `write e.g. input ${n}: tokens(vocab = 96)`,
      };
    }
    if (expected === EOF) return { code: 'E0101', message: `unexpected ${found} after the last model` };
    return { code: 'E0108', message: `expected ${tokenDescription(expected)}, found ${found}` };
  }

  buildNotAllInputParsedMessage(o: { firstRedundant: IToken; ruleName: string }): string {
    return this.parser.register({ code: 'E0101', message: `unexpected ${describeToken(o.firstRedundant)} after the last model` });
  }

  buildNoViableAltMessage(o: { expectedPathsPerAlt: TokenType[][][]; actual: IToken[]; previous: IToken; ruleName: string }): string {
    const p = this.parser;
    const actual = o.actual[0];
    const found = describeToken(actual);
    if (o.ruleName === 'value') {
      if (tokenMatcher(o.previous, Equals)) {
        const name = p.tokenBefore(o.previous);
        const lhs = name && tokenMatcher(name, Identifier) ? `'${name.image} ='` : "'='";
        return p.register({ code: 'E0105', message: `expected a value after ${lhs}` });
      }
      return p.register({ code: 'E0105', message: `expected a value, found ${found}` });
    }
    if (o.ruleName === 'item') {
      const after = tokenMatcher(o.previous, Comma) ? " after ','" : '';
      return p.register({ code: 'E0105', message: `expected an attribute${after}` });
    }
    return p.register({ code: 'E0108', message: `unexpected ${found}` });
  }

  buildEarlyExitMessage(o: { expectedIterationPaths: TokenType[][]; actual: IToken[]; previous: IToken; ruleName: string }): string {
    return this.parser.register({ code: 'E0108', message: `unexpected ${describeToken(o.actual[0])}` });
  }
}

/** One shared instance: Chevrotain parsers are meant to be built once and reused. */
export const nnParser = new NnParser();
