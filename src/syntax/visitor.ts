/**
 * CST → AST. Stamps a Span on every node and reports the mistakes the grammar deliberately lets
 * through (see grammar/parser.ts): stray tokens, missing commas and `=`, `input`/`output` inside a
 * block (the AST has no place for them there).
 *
 * Nodes damaged by a syntax error that was already reported (a non-ASCII name included) keep an empty name: a statement with
 * `kind === ''`, an input with `form === ''` or `name === ''`, a model with `name === ''`, and an item
 * whose name or value is the word `''`, or a number whose value is NaN (a malformed number such as `0x10`). The
 * checker skips these silently, so one mistake gives one message.
 */
import type { CstElement, CstNode, IToken } from 'chevrotain';
import { tokenMatcher } from 'chevrotain';
import { isRealToken, tokEnd, describeToken } from '../../grammar/parser.ts';
import { Identifier, LCurly, NAME_RE, NUMBER_RE, NumberLit, RCurly, StringLit } from '../../grammar/tokens.ts';
import type { DiagnosticBag } from '../diagnostics/diagnostic.ts';
import type { SourceLines } from '../diagnostics/source.ts';
import type { Span } from '../diagnostics/span.ts';
import { didYouMean } from '../runtime/suggest.ts';
import type { FileAst, InputDecl, Item, ModelDecl, ModelMember, OutputDecl, Statement, Value } from './ast.ts';


function isNode(e: CstElement): e is CstNode {
  return (e as CstNode).children !== undefined;
}

/** Unescapes the body of a string literal (`\"`, `\\`, `\n`, `\t`, `\r`; other escapes keep the char). */
function unescapeString(image: string): string {
  const closed = /^"(?:[^"\\\r\n]|\\.)*"$|^'(?:[^'\\\r\n]|\\.)*'$/.test(image);
  const body = image.slice(1, closed ? -1 : undefined);
  return body.replace(/\\(.)/g, (_m, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : c === 'r' ? '\r' : c));
}

export class AstBuilder {
  /** Indices of tokens already blamed by a diagnostic (a stray run starting there is not reported again). */
  private readonly explained: Set<number>;

  /** `blamed`: tokens the parser already reported an error at. */
  constructor(
    private readonly src: SourceLines,
    private readonly tokenIndex: ReadonlyMap<IToken, number>,
    private readonly tokens: readonly IToken[],
    private readonly diags: DiagnosticBag,
    blamed: Iterable<IToken> = [],
    /** `{` tokens whose contents were dropped for nesting too deep (E0110, reported). */
    private readonly cut: ReadonlySet<IToken> = new Set(),
  ) {
    this.explained = new Set([...blamed].map((t) => tokenIndex.get(t) ?? -1));
  }

  // ---- helpers -----------------------------------------------------------------------------------

  private tokSpan(t: IToken): Span {
    return this.src.span(t.startOffset, tokEnd(t));
  }

  /** A zero-width span right after `t` (where a missing token should have been). */
  private after(t: IToken | undefined): Span {
    if (!isRealToken(t)) return this.src.span(0, 0);
    return this.src.span(tokEnd(t), tokEnd(t));
  }

  /**
   * `model input {`: reports a reserved word used as a name and returns its token (its text is not a
   * name, so the node is damaged: see name()).
   */
  private keywordName(node: CstNode, what: 'model' | 'input' | 'output'): IToken | undefined {
    const t = this.tok(node, 'keywordName');
    if (t === undefined) return undefined;
    const fix = what === 'model' ? t.image[0]!.toUpperCase() + t.image.slice(1) : `${t.image}s`;
    const example = what === 'model' ? `model ${fix} { ... }` : what === 'input' ? `input ${fix}: tokens(vocab = 96)` : `output ${fix}`;
    this.diags.error('E0103', `'${t.image}' is a reserved word and cannot name ${what === 'model' ? 'a model' : `an ${what}`}`, this.tokSpan(t), {
      suggestion: `choose another name, e.g. ${example}`,
    });
    return t;
  }

  /** A name token's text; '' (a damaged name, already reported as E0006) when it is not ASCII. */
  private name(t: IToken | undefined): string {
    return t === undefined || !NAME_RE.test(t.image) || !tokenMatcher(t, Identifier) ? '' : t.image;
  }

  private tok(node: CstNode, key: string): IToken | undefined {
    const t = node.children[key]?.[0];
    return t !== undefined && !isNode(t) && isRealToken(t) ? t : undefined;
  }

  private nodes(node: CstNode, key: string): CstNode[] {
    return (node.children[key] ?? []).filter(isNode);
  }

  private toks(node: CstNode, key: string): IToken[] {
    return (node.children[key] ?? []).filter((e): e is IToken => !isNode(e) && isRealToken(e));
  }

  /** First and last real tokens under a node. */
  private extent(node: CstNode): [IToken, IToken] | undefined {
    let first: IToken | undefined;
    let last: IToken | undefined;
    const visit = (n: CstNode): void => {
      for (const list of Object.values(n.children)) {
        for (const e of list) {
          if (isNode(e)) visit(e);
          else if (isRealToken(e)) {
            if (first === undefined || e.startOffset < first.startOffset) first = e;
            if (last === undefined || tokEnd(e) > tokEnd(last)) last = e;
          }
        }
      }
    };
    visit(node);
    return first && last ? [first, last] : undefined;
  }

  private nodeSpan(node: CstNode, fallback: Span): Span {
    const ext = this.extent(node);
    return ext ? this.src.span(ext[0].startOffset, tokEnd(ext[1])) : fallback;
  }

  private startOf(node: CstNode): number {
    return this.extent(node)?.[0].startOffset ?? Number.MAX_SAFE_INTEGER;
  }

  private prevToken(t: IToken): IToken | undefined {
    const i = this.tokenIndex.get(t);
    return i === undefined || i === 0 ? undefined : this.tokens[i - 1];
  }

  /** Splits tokens into runs of consecutive input tokens. */
  private runs(tokens: IToken[]): IToken[][] {
    const runs: IToken[][] = [];
    let prevIdx = -2;
    for (const t of [...tokens].sort((a, b) => a.startOffset - b.startOffset)) {
      const i = this.tokenIndex.get(t) ?? -10;
      if (i === prevIdx + 1 && runs.length > 0) runs[runs.length - 1]!.push(t);
      else runs.push([t]);
      prevIdx = i;
    }
    return runs;
  }

  // ---- rules -------------------------------------------------------------------------------------

  file(cst: CstNode): FileAst {
    for (const run of this.runs(this.toks(cst, 'junk'))) {
      if (!this.explained.has(this.tokenIndex.get(run[0]!) ?? -1)) this.topLevelJunk(run[0]!);
    }
    const models = this.nodes(cst, 'model')
      .sort((a, b) => this.startOf(a) - this.startOf(b))
      .map((m) => this.model(m));
    return { type: 'file', file: this.src.file, models };
  }

  private topLevelJunk(t: IToken): void {
    const span = this.tokSpan(t);
    if (tokenMatcher(t, RCurly)) {
      this.diags.error('E0101', "unexpected '}' — no model or block is open here", span, { suggestion: "remove this '}' or check the braces above" });
      return;
    }
    if (tokenMatcher(t, Identifier)) {
      const close = didYouMean(t.image, ['model']);
      if (close) {
        this.diags.error('E0101', `expected 'model' at the top level, found '${t.image}' — did you mean 'model'?`, span, {
          suggestion: `replace '${t.image}' with 'model'`,
        });
        return;
      }
    }
    this.diags.error('E0101', `expected 'model' at the top level, found ${describeToken(t)}`, span, {
      suggestion: 'a file holds one or more `model NAME { ... }` declarations; statements go inside a model',
    });
  }

  private model(node: CstNode): ModelDecl {
    const kw = this.tok(node, 'Model')!;
    const nameTok = this.tok(node, 'name') ?? this.keywordName(node, 'model');
    const members = this.body(node.children['body']?.find(isNode), 'model');
    return {
      type: 'model',
      name: this.name(nameTok),
      nameSpan: nameTok ? this.tokSpan(nameTok) : this.after(kw),
      members,
      span: this.nodeSpan(node, this.tokSpan(kw)),
    };
  }

  /** Members of a model (`where === 'model'`) or of a block (`where` = the block's kind). */
  private body(node: CstNode | undefined, where: string): ModelMember[] {
    if (node === undefined) return [];
    const inputs = this.nodes(node, 'inputDecl');
    const outputs = this.nodes(node, 'outputDecl');
    const statements = this.nodes(node, 'statement');
    const tagged: [number, () => ModelMember | undefined][] = [
      ...inputs.map((n): [number, () => ModelMember | undefined] => [this.startOf(n), () => this.inputDecl(n, where)]),
      ...outputs.map((n): [number, () => ModelMember | undefined] => [this.startOf(n), () => this.outputDecl(n, where)]),
      ...statements.map((n): [number, () => ModelMember | undefined] => [this.startOf(n), () => this.statement(n)]),
    ];
    tagged.sort((a, b) => a[0] - b[0]);
    const members: ModelMember[] = [];
    for (const [, build] of tagged) {
      const m = build();
      if (m) members.push(m);
    }
    for (const run of this.runs(this.toks(node, 'junk'))) {
      if (!this.explained.has(this.tokenIndex.get(run[0]!) ?? -1)) this.bodyJunk(run[0]!, where);
    }
    return members;
  }

  private bodyJunk(t: IToken, where: string): void {
    const span = this.tokSpan(t);
    const expected = where === 'model' ? "a layer, 'input', 'output' or '}'" : "a layer or '}'";
    if (tokenMatcher(t, LCurly)) {
      this.diags.error('E0107', "unexpected '{' — a block needs its kind first, e.g. residual { ... }", span);
      return;
    }
    const prev = this.prevToken(t);
    if ((tokenMatcher(t, NumberLit) || tokenMatcher(t, StringLit)) && prev && isRealToken(prev) && prev.endLine! < t.startLine!) {
      this.diags.error(
        'E0107',
        `unexpected ${describeToken(t)} at the start of a line — a bare value must be on the same line as its layer kind`,
        span,
        { suggestion: `move ${t.image} up to the end of the previous line, or write it as name = ${t.image}` },
      );
      return;
    }
    this.diags.error('E0107', `unexpected ${describeToken(t)} — expected ${expected}`, span);
  }

  private inputDecl(node: CstNode, where: string): InputDecl | undefined {
    const kw = this.tok(node, 'Input')!;
    const span = this.nodeSpan(node, this.tokSpan(kw));
    if (where !== 'model') {
      this.diags.error('E0408', `'input' can only appear directly inside a model, not inside a ${where} block`, this.tokSpan(kw), {
        suggestion: 'move this input declaration to the top of the model',
      });
      return undefined;
    }
    const nameTok = this.tok(node, 'name') ?? this.keywordName(node, 'input');
    const formTok = this.tok(node, 'form');
    const colon = this.tok(node, 'Colon');
    const list = this.nodes(node, 'itemList')[0];
    return {
      type: 'input',
      name: this.name(nameTok),
      nameSpan: nameTok ? this.tokSpan(nameTok) : this.after(kw),
      form: this.name(formTok),
      formSpan: formTok ? this.tokSpan(formTok) : this.after(colon ?? nameTok ?? kw),
      items: list ? this.itemList(list) : [],
      span,
    };
  }

  private outputDecl(node: CstNode, where: string): OutputDecl | undefined {
    const kw = this.tok(node, 'Output')!;
    if (where !== 'model') {
      this.diags.error('E0408', `'output' can only appear directly inside a model, not inside a ${where} block`, this.tokSpan(kw), {
        suggestion: 'move this output declaration to the model level',
      });
      return undefined;
    }
    const nameTok = this.tok(node, 'name') ?? this.keywordName(node, 'output');
    return {
      type: 'output',
      name: this.name(nameTok),
      nameSpan: nameTok ? this.tokSpan(nameTok) : this.after(kw),
      span: this.nodeSpan(node, this.tokSpan(kw)),
    };
  }

  private statement(node: CstNode): Statement {
    const labelTok = this.tok(node, 'label');
    const kindTok = this.tok(node, 'kind');
    const colon = this.tok(node, 'Colon');
    const first = labelTok ?? kindTok ?? colon;
    let kindSpan = kindTok ? this.tokSpan(kindTok) : this.after(colon ?? labelTok);
    if (!kindTok && colon && labelTok) {
      kindSpan = this.missingAfter(colon, 'E0103', `expected a layer kind after '${labelTok.image}:'`);
    }
    const list = this.nodes(node, 'itemList')[0];
    const items = list ? this.itemList(list) : [];
    const lcurly = this.toks(node, 'LCurly');
    const hasBody = lcurly.length > 0;
    const bodyCut = lcurly.some((t) => this.cut.has(t));
    const body = hasBody
      ? this.body(this.nodes(node, 'body')[0], kindTok?.image ?? 'the').filter((m): m is Statement => m.type === 'statement')
      : undefined;
    return {
      type: 'statement',
      ...(labelTok && this.name(labelTok) !== '' ? { label: labelTok.image, labelSpan: this.tokSpan(labelTok) } : {}),
      kind: this.name(kindTok),
      kindSpan,
      items,
      ...(body ? { body } : {}),
      ...(bodyCut ? { bodyCut } : {}),
      span: this.nodeSpan(node, first ? this.tokSpan(first) : kindSpan),
    };
  }

  /** Reports "expected ... found X" at the token after `t`, and marks that token as explained. */
  private missingAfter(t: IToken, code: string, what: string, sayFound = true): Span {
    const i = this.tokenIndex.get(t);
    const next = i === undefined ? undefined : this.tokens[i + 1];
    if (isRealToken(next)) {
      this.explained.add(i! + 1);
      const span = this.tokSpan(next);
      this.diags.error(code, sayFound ? `${what}, found ${describeToken(next)}` : what, span);
      return this.after(t);
    }
    const span = this.after(t);
    this.diags.error(code, `${what} before the end of the file`, span);
    return span;
  }

  private itemList(node: CstNode): Item[] {
    const commaToks = this.toks(node, 'Comma');
    const commas = commaToks.map((t) => t.startOffset).sort((a, b) => a - b);
    const raw = this.nodes(node, 'item')
      .sort((a, b) => this.startOf(a) - this.startOf(b))
      .map((n) => this.item(n))
      .filter((x): x is { item: Item; missing: boolean } => x !== undefined);
    // A comma with no item before the next comma (or the end) is a trailing comma.
    const sortedCommas = [...commaToks].sort((a, b) => a.startOffset - b.startOffset);
    const itemStarts = raw.map((r) => r.item.span.start).sort((a, b) => a - b);
    let k = 0;
    sortedCommas.forEach((c, ci) => {
      const nextComma = sortedCommas[ci + 1]?.startOffset ?? Infinity;
      while (k < itemStarts.length && itemStarts[k]! <= c.startOffset) k++;
      if (!(k < itemStarts.length && itemStarts[k]! < nextComma)) this.missingAfter(c, 'E0105', "expected an attribute after ','", false);
    });
    const commaBetween = (from: number, to: number): boolean => {
      // first comma at or after `from` (binary search over the sorted offsets)
      let lo = 0;
      let hi = commas.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (commas[mid]! < from) lo = mid + 1;
        else hi = mid;
      }
      return lo < commas.length && commas[lo]! < to;
    };
    const out: Item[] = [];
    let prev: { item: Item; missing: boolean } | undefined;
    for (const cur of raw) {
      if (prev !== undefined) {
        const hasComma = commaBetween(prev.item.span.end, cur.item.span.start);
        if (!hasComma) {
          const p = prev.item;
          const bareValue = cur.item.name === undefined && cur.item.value.type !== 'word';
          if (prev.missing && cur.item.name === undefined) {
            // `hidden = = 3`: the missing value was reported; take the stray value as it.
            const merged: Item = { ...p, value: cur.item.value, span: { ...p.span, end: cur.item.span.end } };
            out[out.length - 1] = merged;
            prev = { item: merged, missing: false };
            continue;
          }
          if (p.name === undefined && p.value.type === 'word' && bareValue && p.value.span.line === cur.item.span.line) {
            const raw = cur.item.value.type === 'number' ? cur.item.value.raw : JSON.stringify(cur.item.value.value);
            this.diags.error('E0109', `expected '=' between '${p.value.value}' and ${raw}`, cur.item.value.span, {
              suggestion: `write ${p.value.value} = ${raw}`,
            });
            const merged: Item = {
              name: p.value.value,
              nameSpan: p.value.span,
              value: cur.item.value,
              span: { ...p.span, end: cur.item.span.end },
            };
            out[out.length - 1] = merged;
            prev = { item: merged, missing: false };
            continue;
          }
          const what = cur.item.name ?? (cur.item.value.type === 'number' ? cur.item.value.raw : String(cur.item.value.value));
          this.diags.error('E0106', `expected ',' before '${what}'`, this.src.span(cur.item.span.start, cur.item.span.start), {
            suggestion: `items are separated by commas: add ',' before '${what}'`,
          });
        }
      }
      out.push(cur.item);
      prev = cur;
    }
    return out;
  }

  /** One item; `missing` when its value was lost to a (reported) syntax error. */
  private item(node: CstNode): { item: Item; missing: boolean } | undefined {
    const nameTok = this.tok(node, 'name');
    const eq = this.tok(node, 'Equals');
    const valueNode = this.nodes(node, 'value')[0];
    const value = valueNode ? this.value(valueNode) : undefined;
    if (nameTok === undefined) {
      return value ? { item: { value, span: value.span }, missing: false } : undefined;
    }
    const nameSpan = this.tokSpan(nameTok);
    if (value === undefined) {
      const at = eq ? this.missingAfter(eq, 'E0105', `expected a value after '${nameTok.image} ='`, false) : this.after(nameTok);
      return { item: { name: this.name(nameTok), nameSpan, value: { type: 'word', value: '', span: at }, span: this.src.span(nameSpan.start, at.end) }, missing: true };
    }
    return { item: { name: this.name(nameTok), nameSpan, value, span: this.src.span(nameSpan.start, value.span.end) }, missing: false };
  }

  private value(node: CstNode): Value | undefined {
    const num = this.tok(node, 'Number');
    if (num) {
      // A malformed number (`0x10`, `1.2.3`) was reported by parse(); NaN marks it as damaged.
      return { type: 'number', value: NUMBER_RE.test(num.image) ? Number(num.image) : Number.NaN, raw: num.image, span: this.tokSpan(num) };
    }
    const word = this.tok(node, 'Identifier');
    if (word) return { type: 'word', value: this.name(word), span: this.tokSpan(word) };
    const str = this.tok(node, 'String');
    if (str) return { type: 'string', value: unescapeString(str.image), span: this.tokSpan(str) };
    return undefined;
  }
}
