/**
 * Module assembly: one TypeScript module per .nn file. It imports the runtime from
 * `nnc/runtime` and holds, per model, its manifest, input/output types, kernel table (each distinct
 * kernel once, rendered by src/codegen/render/ for the CPU, gpu.js and the host backends) and plan
 * (the schedule, as data: src/codegen/plan.ts), and a typed create function.
 *
 * Names: the runtime is imported as one namespace, `__nnc`, a name no model can produce (model-derived
 * names never hold `_` followed by a lowercase letter or digit, see pascal()); two models whose derived
 * names would clash get a `_2`, `_3`, … suffix (equally unproducible), and the file-level aliases
 * (`createModel`, `manifest`, `Inputs`, `Outputs`, `Model`) are left out only where they would name
 * the first model's own declaration (a model called `Model`).
 *
 * Text from the user — the file name, model, input and output names, labels — reaches the module
 * only as JSON string literals or through `commentText` (comments and doc comments), so it can never
 * end a comment or a string early.
 */
import type { ModelIR } from '../ir/model.ts';
import type { ModelManifest, SpecSource } from '../runtime/types.ts';
import { decodeDefaults } from '../runtime/options.ts';
import { keyHash, kernelKey } from './kir.ts';
import type { Program } from './plan.ts';
import { RT } from './render/print.ts';
import { renderCpu } from './render/cpu.ts';
import { renderGpu } from './render/gpu.ts';
import { renderHost } from './render/host.ts';
import type { VocabData } from '../runtime/text/vocab.ts';
import { ngramManifest, type NgramDecl } from '../ngram/compile.ts';
import { printModule, type Statement, type WriterFunction } from './print.ts';

export interface CompiledModel {
  readonly ir: ModelIR;
  /** Its program: the kernel table, the forward's plan, and the training plans (vjp and nnc/train; forward and generate never run them) unless compiled --no-train. */
  readonly program: Program;
  /** The vocabularies its inputs declare (docs/text.md), by input name. */
  readonly text?: Readonly<Record<string, VocabData>>;
}

const q = (s: string) => JSON.stringify(s);
/** A property name: as it is when it is an identifier (the grammar's names are), else a string literal. */
const prop = (s: string) => (/^[A-Za-z_$][\w$]*$/.test(s) ? s : q(s));

/** Characters that read as what they are: letters, marks, numbers, punctuation and symbols, and the space. */
const VISIBLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

/**
 * Text for a comment: visible characters stay as they are; a backslash, a `*` before a `/`, and
 * every other character (line breaks, U+2028/U+2029, controls, bidirectional and other format characters) are
 * escaped as in a string literal, so no user text can end a comment, start a line of code, or hide
 * what the code says.
 */
export function commentText(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (VISIBLE.test(ch)) out += ch;
    else if (c <= 0xffff) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += `\\u{${c.toString(16)}}`;
  }
  return out.split('*/').join('*\\/');
}

/** `char_lm` → `CharLm`. The result never holds `_` followed by [a-z0-9]: names with such a run are ours. */
function pascal(s: string): string {
  return s.replace(/(^|_)([a-z0-9])/g, (_, __, c: string) => c.toUpperCase());
}

/** What model prefix P declares at module level. */
const derived = (P: string): string[] => [`${P}Manifest`, `${P}Inputs`, `${P}Outputs`, `${P}_KERNELS`, `${P}_PLAN`, `${P}_TRAIN`, `${P}Model`, `create${P}`, `${P}Vocab`, `${P}Text`, `${P}_NGRAM`];
/** The first model's file-level aliases: [alias, what it names (given P)]. */
const ALIASES: readonly (readonly [string, (P: string) => string])[] = [
  ['createModel', (P) => `create${P}`],
  ['manifest', (P) => `${P}Manifest`],
  ['Inputs', (P) => `${P}Inputs`],
  ['Outputs', (P) => `${P}Outputs`],
  ['Model', (P) => `${P}Model`],
];

/** Each model's prefix, distinct in what it declares from every other model's and from the aliases. */
export function modelPrefixes(names: readonly string[]): string[] {
  const taken = new Set<string>([RT]);
  return names.map((name, i) => {
    const base = pascal(name);
    let P = base;
    for (let k = 2; derived(P).some((n) => taken.has(n)); k++) P = `${base}_${k}`;
    derived(P).forEach((n) => taken.add(n));
    if (i === 0) for (const [alias] of ALIASES) taken.add(alias);
    return P;
  });
}

/**
 * JSON with the top level's fields on their own lines and the elements of its arrays one per line
 * (a manifest's weights, a plan's instructions): compact, and still one thing per line in a diff.
 */
function jsonLines(obj: object, indent: string): string {
  const fields = Object.entries(obj).filter(([, x]) => x !== undefined).map(([k, x]) => {
    const value = Array.isArray(x) && x.length && x.every((e) => typeof e === 'object' && e !== null)
      ? `[\n${x.map((e) => `${indent}    ${JSON.stringify(e)}`).join(',\n')}\n${indent}  ]`
      : JSON.stringify(x);
    return `${indent}  ${q(k)}: ${value}`;
  });
  return `{\n${fields.join(',\n')}\n${indent}}`;
}

/** An output's type: its known dims as literals, the symbolic ones (B, T, S) as number. */
function outputType(shape: readonly (number | string)[]): string {
  return `${RT}.Tensor<Float32Array, [${shape.map((d) => (typeof d === 'number' ? String(d) : 'number')).join(', ')}]>`;
}

function indent(s: string, n: number): string {
  return s.split('\n').map((l, i) => (i === 0 || !l ? l : '  '.repeat(n) + l)).join('\n');
}

/** The kernel table: each kernel with the labels of what it computes, and its three renderings. */
function kernelTable(program: Program, P: string): WriterFunction {
  return (w) => {
    w.write('[').newLine();
    program.kernels.forEach((k, i) => {
      const labels = program.labels[i]!;
      const more = labels.length > 1 ? ` (and ${labels.length - 1} more call${labels.length > 2 ? 's' : ''})` : '';
      const g = renderGpu(k);
      w.writeLine(`// k${i} ${keyHash(kernelKey(k))}: ${commentText(labels[0]!)}${more}`);
      w.writeLine('{');
      w.writeLine(`  name: ${q(`${P}.k${i}`)},`);
      w.writeLine(`  label: ${q(labels[0]! + more)},`);
      w.writeLine(`  step: ${k.step !== undefined},`);
      w.writeLine(`  scalars: ${JSON.stringify(g.scalars)},`);
      w.writeLine(`  gpu: ${q(g.src)},`);
      w.writeLine(`  cpu: ${indent(renderCpu(k), 1)},`);
      if (k.host) w.writeLine(`  gemm: ${indent(renderHost(k), 1)},`);
      w.writeLine('},');
    });
    w.write(']');
  };
}

function modelStatements(m: CompiledModel, P: string, first: boolean): Statement[] {
  const { ir, program } = m;
  const name = commentText(ir.name);
  const out = ir.graph.get(ir.graph.outputs[0]!.node);
  const outShape = `[${out.shape.join(', ')}]`;
  const fixedSteps = ir.graph.ordered().some((n) => n.op === 'flatten');
  const manifest: ModelManifest = {
    model: ir.name,
    inputs: ir.inputs.map((i) => ({ name: i.name, form: i.form, vocab: i.vocab, dim: i.dim, maxLen: i.maxLen, fixedSteps: fixedSteps || undefined })),
    output: { name: ir.output.name, shape: out.shape },
    weights: ir.weights.map((w) => ({ name: w.name, shape: w.shape, dtype: w.dtype, layer: w.layer })),
    ...(ir.decode ? { decode: decodeDefaults(ir.decode) } : {}),
  };
  const gen = program.plan.gen;
  // a model that generates takes generate()'s inputs as a third type argument; one that cannot has no generate() in its type
  const typeArgs = gen ? `${P}Inputs, ${P}Outputs, ${gen.seq2seq ? `Pick<${P}Inputs, ${q(ir.inputs[0]!.name)}>` : `${P}Inputs`}` : `${P}Inputs, ${P}Outputs`;
  const stmts: Statement[] = [];
  stmts.push({
    kind: 'const',
    isExported: true,
    docs: [`Model ${name}: its inputs, output and weights (names, shapes, dtypes, layer kinds, in load order).`],
    name: `${P}Manifest`,
    initializer: jsonLines(manifest, '') + ' as const',
  });
  stmts.push({
    kind: 'interface',
    isExported: true,
    name: `${P}Inputs`,
    docs: [`Inputs of ${name}.`],
    properties: ir.inputs.map((i) => ({
      name: prop(i.name),
      type: i.form === 'tokens' ? `${RT}.TokensInput${m.text?.[i.name] ? ` | ${RT}.TextInput` : ''}` : `${RT}.VectorsInput`,
      docs: [i.form === 'tokens'
        ? `Token ids [B, ${i.time}] in [0, ${i.vocab}): { data: Int32Array | number[], shape: [B, ${i.time}], lengths? } or number[][].`
        : `Features [B, ${i.time}, ${i.dim}]: { data: Float32Array | number[], shape: [B, ${i.time}, ${i.dim}], lengths? } or number[][][].`],
    })),
  });
  stmts.push({
    kind: 'interface',
    isExported: true,
    name: `${P}Outputs`,
    docs: [`Outputs of ${name}.`],
    properties: [{ name: prop(ir.output.name), type: outputType(out.shape), docs: [`${outShape}${ir.output.seq ? ' (0 at padded steps)' : ''}`] }],
  });
  stmts.push({
    kind: 'const',
    docs: [`The kernel table: each distinct kernel once, called by the plans with different buffers${program.train ? ` (k0 … k${program.forwardKernels - 1} by forward() and generate(), the rest by training only)` : ''}.`],
    name: `${P}_KERNELS`,
    type: `readonly ${RT}.KernelDef[]`,
    initializer: kernelTable(program, P),
  });
  stmts.push({
    kind: 'const',
    docs: ['The schedule, as data: what forward() runs, and what generate() runs per step.'],
    name: `${P}_PLAN`,
    type: `${RT}.Plan`,
    initializer: jsonLines(program.plan, ''),
  });
  const train = program.train;
  if (train) stmts.push({
    kind: 'const',
    docs: ['Training (vjp, nnc/train): the training forward and the backward, on the same kernel table; forward() and generate() never run them.'],
    name: `${P}_TRAIN`,
    type: `${RT}.TrainPlan`,
    initializer: (w) => {
      w.write('{').newLine();
      w.writeLine(`forward: ${indent(jsonLines(train.forward, ''), 1)},`);
      w.writeLine(`backward: ${indent(jsonLines(train.backward, ''), 1)},`);
      w.write('}');
    },
  });
  // text in, text out (docs/text.md): the generated ids are in the vocabulary of the input they are fed to
  const fed = gen ? ir.inputs[gen.seq2seq ? 1 : 0]!.name : undefined;
  const textOpts = { ...(fed !== undefined ? { generated: fed } : {}), ...(gen?.seq2seq ? { target: fed } : {}) };
  stmts.push({
    kind: 'type',
    isExported: true,
    name: `${P}Model`,
    docs: [`${name}, compiled by nnc. Create with create${P}(); load weights before forward()${gen ? ' or generate()' : ''}.`],
    type: m.text ? (gen ? `${RT}.TextModel<${typeArgs}>` : `Omit<${RT}.TextModel<${typeArgs}>, 'generate' | 'stream'>`) : gen ? `${RT}.NncModel<${typeArgs}>` : `${RT}.ForwardModel<${typeArgs}>`,
  });
  const create = `${RT}.createNncModel<${typeArgs}>(${P}Manifest, ${P}_KERNELS, ${P}_PLAN, options, import.meta.url, ${SPEC}${train ? `, ${P}_TRAIN` : ''})`;
  stmts.push({
    kind: 'function',
    isExported: true,
    name: `create${P}`,
    docs: [`Creates a ${name} model on the requested backend ('auto' by default).`],
    parameters: [{ name: 'options', type: `${RT}.CreateOptions`, initializer: '{}' }],
    returnType: `Promise<${P}Model>`,
    statements: [`return ${create}${m.text ? `.then((m) => ${RT}.withText(m, ${P}Vocab, ${JSON.stringify(textOpts)}))` : ''};`],
  });
  if (m.text) textStatements(stmts, P, m.text, ir.inputs.map((i) => i.name), textOpts.generated);
  if (first) stmts.push(...firstAliases(P, m.text !== undefined));
  return stmts;
}

/** The file-level names of the first model (createModel, manifest, …; encode and decode when it has vocabularies). */
function firstAliases(P: string, text: boolean): string[] {
  const lines = ALIASES.filter(([alias, of]) => alias !== of(P)).map(([alias, of]) =>
    alias[0] === alias[0]!.toUpperCase() ? `export type ${alias} = ${of(P)};` : `export const ${alias} = ${of(P)};`);
  if (text) lines.push(`export const encode = ${P}Text.encode;`, `export const decode = ${P}Text.decode;`);
  return lines.length ? [`/** The first model of the file. */\n${lines.join('\n')}`] : [];
}

/** `${P}Vocab` (the vocabularies, as data) and `${P}Text` (encode, decode, vocabulary without a model). */
function textStatements(stmts: Statement[], P: string, text: Readonly<Record<string, VocabData>>, inputs: readonly string[], generated: string | undefined): void {
  stmts.push({
    kind: 'const',
    isExported: true,
    docs: ['The vocabularies of its inputs (docs/text.md), by input name.'],
    name: `${P}Vocab`,
    type: `Readonly<Record<string, ${RT}.VocabData>>`,
    initializer: JSON.stringify(text),
  });
  stmts.push({
    kind: 'const',
    isExported: true,
    docs: ['encode(text, input?) → ids and decode(ids, input?) → text with its vocabularies, without creating a model.'],
    name: `${P}Text`,
    type: `${RT}.TextMethods<${P}Inputs>`,
    initializer: `${RT}.textMethods<${P}Inputs>(${P}Vocab, ${JSON.stringify(inputs)}, ${generated === undefined ? 'undefined' : JSON.stringify(generated)})`,
  });
}

/** An n-gram model (docs/ngram.md): manifest, types, its ngram statement as data, and a create function. */
function ngramStatements(m: NgramDecl, P: string, first: boolean): Statement[] {
  const V = m.input.vocab;
  const name = commentText(m.name);
  const manifestObj = ngramManifest(m);
  const stmts: Statement[] = [];
  const textIn = m.text ? ` | ${RT}.TextInput` : '';
  stmts.push({
    kind: 'const',
    isExported: true,
    docs: [`Model ${name} (an n-gram language model): its input and output; it has no weights (an ARPA file holds what it learns).`],
    name: `${P}Manifest`,
    initializer: jsonLines(manifestObj, '') + ' as const',
  });
  stmts.push({
    kind: 'interface',
    isExported: true,
    name: `${P}Inputs`,
    docs: [`Inputs of ${name}.`],
    properties: [{ name: prop(m.input.name), type: `${RT}.TokensInput${textIn}`, docs: [`Token ids [B, T] in [0, ${V})${m.text ? ', or text (each row after <s>)' : ''}.`] }],
  });
  stmts.push({
    kind: 'interface',
    isExported: true,
    name: `${P}Outputs`,
    docs: [`Outputs of ${name}.`],
    properties: [{ name: prop(m.output), type: `${RT}.Tensor<Float32Array, [number, number, ${V}]>`, docs: [`[B, T, ${V}]: log p(next token) after each position (0 at padded steps)`] }],
  });
  stmts.push({
    kind: 'const',
    docs: ['Its ngram statement: order, smoothing and parameters, sentence boundary ids.'],
    name: `${P}_NGRAM`,
    type: `${RT}.NgramSpec`,
    initializer: JSON.stringify(m.spec),
  });
  if (m.text) textStatements(stmts, P, { [m.input.name]: m.text }, [m.input.name], m.input.name);
  stmts.push({
    kind: 'type',
    isExported: true,
    name: `${P}Model`,
    docs: [`${name}, an n-gram model compiled by nnc. Create with create${P}(); fit(corpus) or loadWeights(arpa) before forward() or generate().`],
    type: `${RT}.NgramModel<${P}Inputs, ${P}Outputs>`,
  });
  stmts.push({
    kind: 'function',
    isExported: true,
    name: `create${P}`,
    docs: [`Creates a ${name} model (it runs on the CPU: an n-gram model has no kernels).`],
    parameters: [{ name: 'options', type: `${RT}.CreateOptions`, initializer: '{}' }],
    returnType: `Promise<${P}Model>`,
    statements: [`return ${RT}.createNgramModel<${P}Inputs, ${P}Outputs>(${P}Manifest, ${P}_NGRAM, ${m.text ? `${P}Vocab[${JSON.stringify(m.input.name)}]` : 'undefined'}, options);`],
  });
  if (first) stmts.push(...firstAliases(P, m.text !== undefined));
  return stmts;
}

/**
 * A string literal of ASCII only: JSON's escapes, and \uXXXX for everything beyond ASCII (line and
 * paragraph separators, bidirectional controls), so that no text in it reads differently on screen.
 */
const asciiString = (s: string) => q(s).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/**
 * The module-level constant holding the spec's text (not its file name, which the header carries): backend 'onnxruntime' exports
 * the model's ONNX graphs from it when weights load (src/runtime/ort.ts). A name no model can produce.
 */
const SPEC = '__nncSpec';

/** The module's statements: a header, the spec (when a model needs it), then each model's. */
export function moduleStatements(models: readonly (CompiledModel | NgramDecl)[], sourceName: string, source: SpecSource): Statement[] {
  const header = [
    `// Generated by nnc from ${commentText(sourceName)}. Do not edit: change the .nn file and recompile.`,
    `// Models: ${models.map((m) => commentText('kind' in m ? m.name : m.ir.name)).join(', ')}.`,
    '/* eslint-disable */',
    `import * as ${RT} from 'nnc/runtime';`,
  ].join('\n');
  const prefixes = modelPrefixes(models.map((m) => ('kind' in m ? m.name : m.ir.name)));
  const files = Object.entries(source.files ?? {});
  const spec: Statement = {
    kind: 'const',
    docs: ['The spec this module was compiled from, and the files it reads: backend \'onnxruntime\' exports its ONNX graphs from it (docs/onnx.md).'],
    name: SPEC,
    type: `${RT}.SpecSource`,
    initializer: `{ text: ${asciiString(source.text)}${files.length ? `, files: { ${files.map(([k, v]) => `${asciiString(k)}: ${asciiString(v)}`).join(', ')} }` : ''} }`,
  };
  // n-gram models run without it: a module of n-gram models alone has no spec (an unread constant)
  const neural = models.some((m) => !('kind' in m));
  return [header, ...(neural ? [spec] : []), ...models.flatMap((m, i) => ('kind' in m ? ngramStatements(m, prefixes[i]!, i === 0) : modelStatements(m, prefixes[i]!, i === 0)))];
}

/** The module's text (print.ts prints the statements in ts-morph's layout). */
export function emitModule(models: readonly (CompiledModel | NgramDecl)[], sourceName: string, source: SpecSource): string {
  const text = printModule(moduleStatements(models, sourceName, source));
  return text.endsWith('\n') ? text : `${text}\n`;
}
