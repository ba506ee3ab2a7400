/**
 * What the language server (src/lsp.ts) knows about a document, as plain functions over its text:
 * diagnostics, shapes and parameters per statement, hover text, completions, definitions and the
 * outline. Offsets are UTF-16 code units into the text, as in the compiler's spans.
 *
 * Shapes come from the compiler's own lowering (src/architecture.ts). When the file has errors,
 * `lower()` gives no IR; the statements before the first error in each model still get shapes by
 * lowering a copy of the text in which everything from that statement to the end of its model is
 * blanked out (same offsets; the blocks it was in are closed), repeated while errors remain.
 */
import { describeModels, elements, repeatCount, showCount, showShape, type ModelFacts, type StatementFacts } from './architecture.ts';
import type { Diagnostic } from './diagnostics/diagnostic.ts';
import type { Span } from './diagnostics/span.ts';
import { InternalError, lower } from './driver.ts';
import type { Shape } from './ir/graph.ts';
import type { AttrSpec, AttrType, KindSchema } from './layers/schema.ts';
import { INPUT_SCHEMAS, STATEMENT_SCHEMAS } from './layers/schemas.ts';
import type { FileAst, InputDecl, Item, ModelDecl, ModelMember, Statement } from './syntax/ast.ts';
import { parse } from './syntax/parse.ts';
import { LCurly, lexer, RCurly } from '../grammar/tokens.ts';

export interface Analysis {
  readonly text: string;
  readonly ast: FileAst;
  readonly diagnostics: readonly Diagnostic[];
  /** Per model (by span start of its declaration). */
  readonly models: ReadonlyMap<number, ModelFacts>;
  /** A compiler failure (a bug), reported as one diagnostic by the server. */
  readonly internal?: string;
}

/** Rounds of cutting a model at its first error before giving up on shapes. */
const MAX_CUTS = 8;

export function analyze(text: string, file: string): Analysis {
  try {
    const r = lower(text, file);
    const ast = r.ast ?? parse(text, file).ast;
    if (r.models) return { text, ast, diagnostics: r.diagnostics, models: byStart(describeModels(r.models, ast)) };
    return { text, ast, diagnostics: r.diagnostics, models: byStart(partialFacts(text, file, ast, r.diagnostics)) };
  } catch (e) {
    if (!(e instanceof InternalError)) throw e;
    return { text, ast: parse(text, file).ast, diagnostics: [], models: new Map(), internal: e.message };
  }
}

function byStart(models: readonly ModelFacts[]): Map<number, ModelFacts> {
  return new Map(models.map((m) => [m.decl.span.start, m]));
}

/** Statements and blocks of a body, depth first, with their enclosing blocks. */
function* walk(members: readonly ModelMember[], blocks: Statement[] = []): Generator<{ stmt: Statement; blocks: Statement[] }> {
  for (const m of members) {
    if (m.type !== 'statement') continue;
    yield { stmt: m, blocks };
    if (m.body) yield* walk(m.body, [...blocks, m]);
  }
}

/** Facts for the statements before the first error of each model (see the header comment). */
function partialFacts(text: string, file: string, ast: FileAst, diagnostics: readonly Diagnostic[]): ModelFacts[] {
  let cut = text;
  let errors = diagnostics.filter((d) => d.severity === 'error');
  let tree = ast;
  for (let round = 0; round < MAX_CUTS && errors.length; round++) {
    const before = cut;
    for (const model of tree.models) {
      const first = errors.filter((d) => d.span.start >= model.span.start && d.span.start <= model.span.end).sort((a, b) => a.span.start - b.span.start)[0];
      if (first) cut = cutModel(cut, model, first.span.start);
    }
    // an error outside every model (a stray token at the top level), or one no cut removes
    if (cut === before) return [];
    let r: ReturnType<typeof lower>;
    try {
      r = lower(cut, file);
    } catch {
      return [];
    }
    if (r.models && r.ast) return describeModels(r.models, r.ast);
    errors = r.diagnostics.filter((d) => d.severity === 'error');
    tree = r.ast ?? parse(cut, file).ast;
  }
  return [];
}

/**
 * The text with model `m` cut at `offset`: blanked from the statement there (or from `offset`, or
 * from the start of the body for an error in the model's header or declarations) to the model's
 * closing brace, with the blocks left open there closed — and the model too, if it was never closed
 * (a file being typed). Offsets before the cut stay as they were.
 */
function cutModel(text: string, m: ModelDecl, offset: number): string {
  const inner = [...walk(m.members)].filter(({ stmt }) => stmt.span.start <= offset && offset <= stmt.span.end).at(-1);
  const decl = m.members.find((d) => d.type !== 'statement' && d.span.start <= offset && offset <= d.span.end);
  const toks = lexer.tokenize(text).tokens.filter((t) => t.startOffset >= m.span.start && t.startOffset < m.span.end);
  const braces = toks.filter((t) => t.tokenType === LCurly || t.tokenType === RCurly);
  const bodyStart = braces[0]?.tokenType === LCurly ? braces[0].startOffset : undefined;
  if (bodyStart === undefined) return text;
  const from = decl || offset <= bodyStart ? bodyStart + 1 : (inner?.stmt.span.start ?? offset);
  const depthAt = (at: number) => braces.reduce((d, t) => (t.startOffset < at ? d + (t.tokenType === LCurly ? 1 : -1) : d), 0);
  const last = braces.at(-1);
  const closed = last !== undefined && last.tokenType === RCurly && depthAt(last.startOffset + 1) === 0;
  const end = closed ? last.startOffset : m.span.end;
  if (from > end) return text;
  const close = '}'.repeat(Math.max(0, depthAt(from) - (closed ? 1 : 0)));
  const blank = text.slice(from, end).replace(/[^\n\r]/g, ' ');
  return text.slice(0, from) + close + blank.slice(close.length) + text.slice(end);
}

// ---- what is at an offset ---------------------------------------------------------------------

export type Target =
  | { readonly what: 'model'; readonly model: ModelDecl; readonly span: Span }
  | { readonly what: 'input'; readonly model: ModelDecl; readonly decl: InputDecl; readonly span: Span }
  | { readonly what: 'output'; readonly model: ModelDecl; readonly span: Span }
  | { readonly what: 'statement'; readonly model: ModelDecl; readonly stmt: Statement; readonly span: Span }
  | { readonly what: 'label'; readonly model: ModelDecl; readonly stmt: Statement; readonly span: Span }
  | { readonly what: 'option'; readonly model: ModelDecl; readonly owner: Statement | InputDecl; readonly item: Item; readonly span: Span };

const within = (s: Span | undefined, o: number): s is Span => s !== undefined && s.start <= o && o <= s.end;

export function targetAt(ast: FileAst, offset: number): Target | undefined {
  const model = ast.models.find((m) => within(m.span, offset));
  if (!model) return undefined;
  if (within(model.nameSpan, offset)) return { what: 'model', model, span: model.nameSpan };
  const item = (owner: Statement | InputDecl): Target | undefined => {
    for (const i of owner.items) {
      if (within(i.nameSpan, offset)) return { what: 'option', model, owner, item: i, span: i.nameSpan };
      if (within(i.value.span, offset)) return { what: 'option', model, owner, item: i, span: i.value.span };
    }
    return undefined;
  };
  for (const d of model.members) {
    if (d.type === 'input' && within(d.span, offset)) return item(d) ?? { what: 'input', model, decl: d, span: d.nameSpan };
    if (d.type === 'output' && within(d.span, offset)) return { what: 'output', model, span: d.nameSpan };
  }
  const hit = [...walk(model.members)].filter(({ stmt }) => within(stmt.span, offset)).at(-1);
  if (!hit) return undefined;
  const s = hit.stmt;
  if (within(s.labelSpan, offset)) return { what: 'label', model, stmt: s, span: s.labelSpan };
  return item(s) ?? { what: 'statement', model, stmt: s, span: s.kindSpan };
}

// ---- hover ------------------------------------------------------------------------------------

function typeText(t: AttrType): string {
  switch (t.kind) {
    case 'int': return `integer${t.min !== undefined ? ` ≥ ${t.min}` : ''}${t.max !== undefined ? `, ≤ ${showCount(t.max)}` : ''}${t.orString !== undefined ? `, or a string: ${t.orString}` : ''}`;
    case 'float': return `number${t.min !== undefined ? ` ${t.minExclusive ? '>' : '≥'} ${t.min}` : ''}${t.max !== undefined ? `, ≤ ${t.max}` : ''}`;
    case 'bool': return 'flag (true / false; a bare word sets it)';
    case 'enum': return `one of ${t.values.map((v) => `\`${v}\``).join(', ')}`;
    case 'string': return `a double-quoted string: ${t.what}`;
  }
}

/** An option's documentation: what it is, its values, its default. */
export function optionDoc(schema: KindSchema, a: AttrSpec): string {
  const facts = [typeText(a.type), a.required ? 'required' : a.default !== undefined ? `default: \`${String(a.default)}\`` : 'optional'];
  if (a.positional) facts.push(`\`${schema.kind} ${a.type.kind === 'enum' ? a.type.values[0] : 'N'}\` is \`${schema.kind} ${a.name} = …\``);
  return `**${a.name}** — ${a.doc}\n\n${facts.join(' · ')}`;
}

/** The schema an item belongs to. */
function ownerSchema(owner: Statement | InputDecl): KindSchema | undefined {
  return owner.type === 'input' ? INPUT_SCHEMAS.get(owner.form) : STATEMENT_SCHEMAS.get(owner.kind);
}

/** The attribute an item sets: by name, or the positional one, or a flag. */
function itemAttr(schema: KindSchema, owner: Statement | InputDecl, item: Item): AttrSpec | undefined {
  if (item.name !== undefined) return schema.attrs.find((a) => a.name === item.name);
  const word = item.value.type === 'word' ? item.value.value : undefined;
  const flag = word !== undefined ? schema.attrs.find((a) => a.name === word && a.type.kind === 'bool') : undefined;
  if (flag) return flag;
  return owner.items[0] === item ? schema.attrs.find((a) => a.positional) : undefined;
}

function paramsText(f: StatementFacts): string[] {
  if (!f.weights.length) return [];
  const perCopy = f.copies > 1 ? ` (${showCount(f.params / f.copies)} per copy, × ${f.copies})` : '';
  const shown = f.weights.slice(0, f.copies > 1 ? f.weights.length / f.copies : f.weights.length);
  return [
    `parameters: **${showCount(f.params)}**${perCopy} in ${f.weights.length} tensor${f.weights.length === 1 ? '' : 's'}`,
    ...shown.slice(0, 12).map((w) => `- \`${w.name}\` ${showShape(w.shape)} (${showCount(elements(w.shape))})`),
    ...(shown.length > 12 ? [`- … ${shown.length - 12} more`] : []),
  ];
}

/** Markdown for what is under the cursor. */
export function hover(a: Analysis, offset: number): { markdown: string; span: Span } | undefined {
  const t = targetAt(a.ast, offset);
  if (!t) return undefined;
  const facts = a.models.get(t.model.span.start);
  const noShapes = a.diagnostics.some((d) => d.severity === 'error') ? '_shapes unknown: an error earlier in this model stops shape inference here_' : '_no shapes: the file has errors_';
  switch (t.what) {
    case 'model': {
      const lines = [`**model ${t.model.name}**`];
      if (facts) lines.push('', `parameters: **${showCount(facts.params)}** in ${facts.ir.weights.length} tensors`, ...facts.ir.inputs.map((i) => `- input \`${i.name}\`: ${i.form}`), `- output \`${facts.ir.output.name}\``);
      return { markdown: lines.join('\n'), span: t.span };
    }
    case 'input': {
      const schema = INPUT_SCHEMAS.get(t.decl.form);
      const input = facts?.ir.inputs.find((i) => i.name === t.decl.name);
      const shape: Shape | undefined = input ? (input.form === 'tokens' ? ['B', input.time] : ['B', input.time, input.dim ?? 0]) : undefined;
      return { markdown: [`**input ${t.decl.name}**: ${t.decl.form}${shape ? ` \`${showShape(shape)}\`` : ''}`, schema ? `\n\n${schema.doc}` : ''].join(''), span: t.span };
    }
    case 'output': {
      const out = facts?.edges.find((e) => e.to.kind === 'output');
      return { markdown: `**output ${t.model.members.find((d) => d.type === 'output')?.name ?? ''}**${out ? `: \`${showShape(out.shape)}\`` : ''}\n\nwhat the model returns: the last layer's value`, span: t.span };
    }
    case 'option': {
      const schema = ownerSchema(t.owner);
      const attr = schema && itemAttr(schema, t.owner, t.item);
      if (!schema || !attr) return undefined;
      return { markdown: `${optionDoc(schema, attr)}\n\n_${t.owner.type === 'input' ? `input form ${schema.kind}` : schema.kind}_`, span: t.span };
    }
    case 'label':
    case 'statement': {
      const schema = STATEMENT_SCHEMAS.get(t.stmt.kind);
      const f = facts?.statements.get(t.stmt.span.start);
      const title = `**${t.stmt.label !== undefined ? `${t.stmt.label}: ` : ''}${t.stmt.kind}${t.stmt.kind === 'repeat' ? ` × ${repeatCount(t.stmt)}` : ''}**${schema ? ` — ${schema.doc}` : ''}`;
      const parts = [title];
      if (f?.output) parts.push(`output: \`${showShape(f.output)}\``);
      else if (f?.perStep) parts.push(`runs inside ${f.loop ? `\`${f.loop.kind}\`'s` : 'the next recurrent layer\'s'} time loop: \`${showShape(f.perStep)}\` per step`);
      else if (f && schema?.shape === 'layer') parts.push('output: its input, unchanged (identity at inference)');
      else if (!f && schema?.shape !== 'directive') parts.push(noShapes);
      if (f) {
        const own = paramsText(f);
        if (own.length) parts.push(own.join('\n'));
        if (t.stmt.body !== undefined && facts) {
          const inside = [...facts.statements.values()].filter((x) => x.stmt !== t.stmt && x.stmt.span.start >= t.stmt.span.start && x.stmt.span.end <= t.stmt.span.end).reduce((a, x) => a + x.params, 0);
          if (inside) parts.push(`parameters inside: **${showCount(inside)}**`);
        }
      }
      return { markdown: parts.join('\n\n'), span: t.span };
    }
  }
}

// ---- completion -------------------------------------------------------------------------------

export interface Completion {
  readonly label: string;
  readonly kind: 'layer' | 'block' | 'keyword' | 'option' | 'value';
  readonly detail?: string;
  readonly documentation: string;
  /** Text to insert (defaults to the label). */
  readonly insert?: string;
}

const kindCompletions = (topLevel: boolean): Completion[] =>
  [...STATEMENT_SCHEMAS.values()]
    .filter((s) => topLevel || !s.topLevelOnly)
    .map((s) => ({ label: s.kind, kind: s.shape === 'block' ? 'block' : s.shape === 'directive' ? 'keyword' : 'layer', detail: s.family, documentation: s.doc + (s.attrs.length ? `\n\noptions: ${s.attrs.map((x) => `\`${x.name}\``).join(', ')}` : ''), insert: s.shape === 'block' ? `${s.kind} {` : undefined }) as Completion);

const optionCompletions = (schema: KindSchema, written: ReadonlySet<string>, first: boolean): Completion[] => [
  ...schema.attrs.filter((a) => !written.has(a.name)).map((a): Completion => ({
    label: a.name, kind: 'option', detail: typeText(a.type), documentation: optionDoc(schema, a), insert: a.type.kind === 'bool' ? a.name : `${a.name} = `,
  })),
  // `pool max`, `positional learned`: the positional attribute's words right after the kind
  ...(first ? schema.attrs.filter((a) => a.positional && a.type.kind === 'enum' && !written.has(a.name)).flatMap((a) => valueCompletions(schema, a)) : []),
];

function valueCompletions(schema: KindSchema, a: AttrSpec): Completion[] {
  if (a.type.kind === 'enum') return a.type.values.map((v) => ({ label: v, kind: 'value', detail: `${schema.kind} ${a.name}`, documentation: `${a.doc}${v === a.default ? ' (default)' : ''}` }));
  if (a.type.kind === 'bool') return ['true', 'false'].map((v) => ({ label: v, kind: 'value', detail: `${schema.kind} ${a.name}`, documentation: a.doc }));
  return [];
}

/**
 * What may be typed at `offset`: layer kinds at the start of a statement, option names after a
 * kind, values after `name =`, input forms and their options in an input declaration.
 */
export function complete(a: Analysis, offset: number): Completion[] {
  const lineStart = Math.max(a.text.lastIndexOf('\n', offset - 1), a.text.lastIndexOf('\r', offset - 1)) + 1;
  // the statement being typed starts after the last ';', '{' or '}' on the line
  const before = a.text.slice(lineStart, offset).replace(/^.*[;{}]/, '').replace(/\/\/.*$/, '');
  const model = a.ast.models.find((m) => m.span.start < offset && offset <= m.span.end);
  if (!model) return /^\s*\w*$/.test(before) ? [{ label: 'model', kind: 'keyword', documentation: 'a model: `model Name { input …; output …; layers }`', insert: 'model ' }] : [];
  const depth = [...walk(model.members)].filter(({ stmt }) => stmt.body !== undefined && stmt.span.start < offset && offset < stmt.span.end).length;
  let m: RegExpMatchArray | null;
  if ((m = before.match(/^\s*input\s+\w+\s*:\s*(\w+)\s*\((.*)$/))) {
    const schema = INPUT_SCHEMAS.get(m[1]!);
    if (!schema) return [];
    const inside = m[2]!;
    if (/(\w+)\s*=\s*\w*$/.test(inside)) return [];
    const written = new Set([...inside.matchAll(/(\w+)\s*=/g)].map((x) => x[1]!));
    return optionCompletions(schema, written, false);
  }
  if (/^\s*input\s+\w+\s*:\s*\w*$/.test(before)) return [...INPUT_SCHEMAS.values()].map((s) => ({ label: s.kind, kind: 'keyword', documentation: s.doc, insert: `${s.kind}(` }));
  if (/^\s*(?:input|output)\b/.test(before)) return [];
  if ((m = before.match(/^\s*(?:\w+\s*:\s*)?\w*$/))) {
    const keywords: Completion[] = depth === 0 ? [
      { label: 'input', kind: 'keyword', documentation: 'a model input: `input text: tokens(vocab = V)` or `input x: vectors(dim = D)`', insert: 'input ' },
      { label: 'output', kind: 'keyword', documentation: "names what the model returns (the last layer's value): `output next`", insert: 'output ' },
    ] : [];
    return [...kindCompletions(depth === 0), ...(/:/.test(before) ? [] : keywords)];
  }
  if ((m = before.match(/^\s*(?:\w+\s*:\s*)?(\w+)\s+(.*)$/))) {
    const schema = STATEMENT_SCHEMAS.get(m[1]!);
    if (!schema) return [];
    const rest = m[2]!;
    const value = rest.match(/(?:^|,)\s*(\w+)\s*=\s*\w*$/);
    if (value) {
      const attr = schema.attrs.find((x) => x.name === value[1]);
      return attr ? valueCompletions(schema, attr) : [];
    }
    if (!/(?:^|,)\s*\w*$/.test(rest)) return [];
    const written = new Set([...rest.matchAll(/(?:^|,)\s*(\w+)/g)].map((x) => x[1]!));
    return optionCompletions(schema, written, !rest.includes(','));
  }
  return [];
}

// ---- definition and outline -------------------------------------------------------------------

/**
 * Where the name under the cursor is defined: a label (or a statement's automatic name) → the
 * statement that first takes it in its scope; `output NAME` → the statement whose value the model
 * returns; a decoder's attention → the encoder (its memory).
 */
export function definition(a: Analysis, offset: number): Span | undefined {
  const t = targetAt(a.ast, offset);
  if (!t) return undefined;
  if (t.what === 'label') {
    const scope = [...walk(t.model.members)].find(({ stmt }) => stmt.body?.includes(t.stmt))?.stmt.body ?? t.model.members;
    const first = scope.find((s): s is Statement => s.type === 'statement' && s.label === t.stmt.label);
    return first?.labelSpan;
  }
  if (t.what === 'output') {
    const out = a.models.get(t.model.span.start)?.edges.find((e) => e.to.kind === 'output');
    return out?.from.kind === 'statement' ? out.from.stmt.kindSpan : undefined;
  }
  if (t.what === 'statement' && t.stmt.kind === 'attention') {
    const facts = a.models.get(t.model.span.start);
    const memory = facts?.edges.find((e) => e.to.kind === 'statement' && e.to.stmt === t.stmt && e.from.kind === 'statement' && facts.statements.get(e.from.stmt.span.start)?.blocks.some((b) => b.kind === 'encoder'));
    return memory?.from.kind === 'statement' ? memory.from.stmt.kindSpan : undefined;
  }
  return undefined;
}

export interface OutlineSymbol {
  readonly name: string;
  readonly detail: string;
  readonly kind: 'model' | 'input' | 'output' | 'block' | 'layer' | 'directive';
  readonly span: Span;
  readonly selection: Span;
  readonly children: readonly OutlineSymbol[];
}

/** Models, their inputs and output, blocks and layers, with shapes where known. */
export function outline(a: Analysis): OutlineSymbol[] {
  return a.ast.models.map((m) => {
    const facts = a.models.get(m.span.start);
    const stmt = (s: Statement): OutlineSymbol => {
      const f = facts?.statements.get(s.span.start);
      const schema = STATEMENT_SCHEMAS.get(s.kind);
      const shape = f?.output ? showShape(f.output) : f?.perStep ? `${showShape(f.perStep)} per step` : '';
      return {
        name: `${s.label !== undefined ? `${s.label}: ` : ''}${s.kind}${s.kind === 'repeat' ? ` × ${repeatCount(s)}` : ''}`,
        detail: [shape, f?.params ? `${showCount(f.params)} params` : ''].filter(Boolean).join(' · '),
        kind: s.body !== undefined ? 'block' : schema?.shape === 'directive' ? 'directive' : 'layer',
        span: s.span,
        selection: s.labelSpan ?? s.kindSpan,
        children: (s.body ?? []).map(stmt),
      };
    };
    return {
      name: m.name,
      detail: facts ? `${showCount(facts.params)} params` : '',
      kind: 'model',
      span: m.span,
      selection: m.nameSpan,
      children: m.members.map((d): OutlineSymbol => d.type === 'statement' ? stmt(d) : {
        name: d.name, detail: d.type === 'input' ? d.form : 'output', kind: d.type, span: d.span, selection: d.nameSpan, children: [],
      }),
    };
  });
}
