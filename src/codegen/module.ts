/**
 * Module assembly (ts-morph): one TypeScript module per .nn file. It imports the runtime from
 * `nnc/runtime` and holds, per model, its manifest, input/output types, kernel table (CPU loop
 * nests and gpu.js sources around the shared bodies) and plan (the schedule, as data), and a typed
 * create function.
 *
 * Names: the runtime is imported as one namespace, `__nnc`, a name no model can produce (model-derived
 * names never hold `_` followed by a lowercase letter or digit, see pascal()); two models whose derived
 * names would clash get a `_2`, `_3`, … suffix (equally unproducible), and the file-level aliases
 * (`createModel`, `manifest`, `Inputs`, `Outputs`, `Model`) are left out only where they would name
 * the first model's own declaration (a model called `Model`).
 *
 * The module type-checks under a strict app tsconfig (noUncheckedIndexedAccess, noUnusedParameters,
 * exactOptionalPropertyTypes, erasableSyntaxOnly, verbatimModuleSyntax, …): CPU kernels read buffers
 * with `x[i]!` (every index is in range by construction), take their scalars from a typed object and
 * name unused parameters with a leading `_`.
 */
import { Project, StructureKind, VariableDeclarationKind, type StatementStructures, type WriterFunction } from 'ts-morph';
import type { ModelIR } from '../ir/model.ts';
import type { KernelCode, Program } from './kernels.ts';
import { SCALARS } from './kernels.ts';
import type { VocabData } from '../runtime/text/vocab.ts';
import { ngramManifest, type NgramDecl } from '../ngram/compile.ts';

export interface CompiledModel {
  readonly ir: ModelIR;
  readonly program: Program;
  /** The vocabularies its inputs declare (docs/text.md), by input name. */
  readonly text?: Readonly<Record<string, VocabData>>;
}

const q = (s: string) => JSON.stringify(s);

/** `char_lm` → `CharLm`. The result never holds `_` followed by [a-z0-9]: names with such a run are ours. */
function pascal(s: string): string {
  return s.replace(/(^|_)([a-z0-9])/g, (_, __, c: string) => c.toUpperCase());
}

/** What model prefix P declares at module level. */
const derived = (P: string): string[] => [`${P}Manifest`, `${P}Inputs`, `${P}Outputs`, `${P}_KERNELS`, `${P}_PLAN`, `${P}Model`, `create${P}`, `${P}Vocab`, `${P}Text`, `${P}_NGRAM`];
/** The first model's file-level aliases: [alias, what it names (given P)]. */
const ALIASES: readonly (readonly [string, (P: string) => string])[] = [
  ['createModel', (P) => `create${P}`],
  ['manifest', (P) => `${P}Manifest`],
  ['Inputs', (P) => `${P}Inputs`],
  ['Outputs', (P) => `${P}Outputs`],
  ['Model', (P) => `${P}Model`],
];
/** The runtime namespace's name. */
const RT = '__nnc';

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
 * Adds `!` to every element read `x[...]` of a CPU kernel's code (not to writes `x[...] = …`): under
 * noUncheckedIndexedAccess a read is `number | undefined`; the kernels' indices are in range by
 * construction.
 */
export function assertReads(code: string): string {
  let out = '';
  let i = 0;
  const re = /[A-Za-z_$][\w$]*\[/g;
  for (let m = re.exec(code); m; m = re.exec(code)) {
    if (m.index > 0 && /[\w$.]/.test(code[m.index - 1]!)) continue;
    let depth = 0;
    let j = m.index + m[0].length - 1;
    for (; j < code.length; j++) {
      if (code[j] === '[') depth++;
      else if (code[j] === ']' && --depth === 0) break;
    }
    if (j >= code.length) break;
    const after = code.slice(j + 1);
    if (!/^\s*([-+*/%]?=(?!=)|\+\+|--)/.test(after) && !after.startsWith('!')) {
      out += code.slice(i, j + 1) + '!';
      i = j + 1;
    }
    re.lastIndex = m.index + m[0].length;
  }
  return out + code.slice(i);
}

/** The scalars (symbolic sizes, t, tp) a kernel's source uses, in SCALARS order. */
function scalarsUsed(src: string): string[] {
  return SCALARS.filter((n) => new RegExp(`\\b${n}\\b`).test(src));
}

/**
 * A kernel's GEMM form (KernelCode.gemm) for the host backends: the packing loops and GEMM calls,
 * then the epilogue in the CPU kernel's loop nest. `x` is the host's GEMM (WebAssembly SIMD or plain
 * TypeScript) with the kernel's packed weights; `g` its scratch buffers.
 */
function gemmKernel(k: KernelCode): string {
  const gm = k.gemm!;
  // a step kernel's row buffer is one more scratch buffer (nothing is allocated per step)
  const dst = k.time !== undefined && gm.epilogue !== undefined ? `g[${gm.scratch.length}]!` : undefined;
  const sizesList = dst ? [...gm.scratch, k.dims[1]] : [...gm.scratch];
  const code = `${indent(assertReads(gm.prelude), 1)}\n${gm.epilogue !== undefined ? loopNest(k, assertReads(gm.epilogue), dst) : ''}`;
  const uses = (v: string) => new RegExp(`\\b${v}\\b`).test(code);
  const scratch = gm.scratch.map((_, i) => `gm${i}`).filter(uses);
  const usesG = scratch.length > 0 || dst !== undefined;
  const unpackG = scratch.length ? `  const ${scratch.map((v) => `${v} = g[${v.slice(2)}]!`).join(', ')};\n` : '';
  const { unpack, params } = header(k, code);
  const packs = gm.packs.map((p) => `[${k.args.indexOf(p.buf)}, ${p.row}, ${p.n}, ${p.col}, ${p.k}, ${p.ld}]`).join(', ');
  const sizes = sizesList.join(', ');
  const sizeScalars = scalarsUsed(sizes);
  return [
    '{',
    `  packs: [${packs}],`,
    `  scratch: (${sizeScalars.length ? 's' : '_s'}) => ${sizeScalars.length ? `{ const { ${sizeScalars.join(', ')} } = s; return [${sizes}]; }` : `[${sizes}]`},`,
    `  run: (${uses('x') ? 'x' : '_x'}, ${params.out}, ${params.a}, ${usesG ? 'g' : '_g'}, ${params.s}) => {`,
    indent(`${unpack}${unpackG}${code}}`, 1),
    '}',
  ].join('\n');
}

/** A kernel function's first lines (its scalars, the buffers its code reads) and parameter names (unused ones get a '_'). */
function header(k: KernelCode, code: string): { unpack: string; params: { out: string; a: string; s: string } } {
  const uses = (v: string) => new RegExp(`\\b${v}\\b`).test(code);
  const readArgs = k.args.map((a, i) => [a, i] as const).filter(([a]) => uses(a));
  const sc = scalarsUsed(code);
  const unpack = (sc.length ? `  const { ${sc.join(', ')} } = s;\n` : '') + (readArgs.length ? `  const ${readArgs.map(([a, i]) => `${a} = a[${i}]!`).join(', ')};\n` : '');
  return { unpack, params: { out: uses('out') ? 'out' : '_out', a: readArgs.length ? 'a' : '_a', s: sc.length ? 's' : '_s' } };
}

/** A CPU kernel: the loop nest around the shared body. */
function cpuKernel(k: KernelCode): string {
  const code = loopNest(k, assertReads(k.cpu));
  const { unpack, params } = header(k, code);
  return `(${params.out}, ${params.a}, ${params.s}) => {\n${unpack}${code}}`;
}

/** The loop nest that evaluates a per-element body over a kernel's output. */
function loopNest(k: KernelCode, body: string, dst?: string): string {
  const used = (v: string, src = body) => new RegExp(`\\b${v}\\b`).test(src);
  const param = (v: string, type: string, src = body) => `${used(v, src) ? v : `_${v}`}: ${type}`;
  const idx = k.dims.map((_, i) => `i${i}`);
  if (k.time !== undefined) {
    // Slot t of the history [B, L, S], one batch row at a time: the row is computed into `dst` and
    // only then copied in, so no element reads a value another element of this step wrote (the
    // previous state may be the history itself). Padded steps are 0. A two-halves state
    // (KernelCode.pairHalf) computes both halves per body.
    const len = k.args[k.args.length - 1];
    const S = k.dims[1];
    const f = k.pairHalf !== undefined
      ? `  const f = (${param('i0', 'number')}, ${param('i1', 'number')}, ${param('dst', 'Float32Array')}): void => {\n${indent(body, 2)}\n  };\n`
      : `  const f = (${param('i0', 'number')}, ${param('i1', 'number')}): number => {\n${indent(body, 2)}\n  };\n`;
    const fill = k.pairHalf !== undefined ? `for (let i1 = 0; i1 < ${k.pairHalf}; i1++) f(i0, i1, dst);` : `for (let i1 = 0; i1 < ${S}; i1++) dst[i1] = f(i0, i1);`;
    return `${f}  const dst = ${dst ?? `new Float32Array(${S})`};\n  for (let i0 = 0; i0 < B; i0++) {\n    const row = (i0 * ${k.time} + t) * ${S};\n    if (t < ${len}[i0]!) {\n      ${fill}\n      out.set(dst, row);\n    } else out.fill(0, row, row + ${S});\n  }\n`;
  }
  const f = `  const f = (${idx.map((i) => param(i, 'number')).join(', ')}): number => {\n${indent(body, 2)}\n  };\n`;
  let loops = '';
  idx.forEach((v, i) => (loops += `${'  '.repeat(i + 1)}for (let ${v} = 0; ${v} < ${k.dims[i]}; ${v}++)\n`));
  return `${f}  let o = 0;\n${loops}${'  '.repeat(idx.length + 1)}out[o++] = f(${idx.join(', ')});\n`;
}

/** A gpu.js kernel source: one thread per output element of a flat 1-D output; its scalars follow its buffers. */
function gpuKernel(k: KernelCode): { src: string; scalars: string[] } {
  const step = k.time !== undefined;
  const dims = step ? [k.dims[0], k.time!, k.dims[1]] : [...k.dims];
  const lines = ['const idx = this.thread.x;'];
  // decompose the flat index (the +0.5 guards against an inexact division on GPUs)
  let rest = 'idx';
  const names = step ? ['i0', 'tt', 'i1'] : dims.map((_, i) => `i${i}`);
  for (let i = 0; i < dims.length; i++) {
    if (i === dims.length - 1) {
      lines.push(`const ${names[i]} = ${rest};`);
      break;
    }
    const stride = dims.slice(i + 1).join(' * ');
    lines.push(`const ${names[i]} = Math.floor((${rest} + 0.5) / (${stride}));`);
    lines.push(`const rem${i} = ${rest} - ${names[i]} * (${stride});`);
    rest = `rem${i}`;
  }
  let body: string;
  if (!step) body = `${indent(lines.join('\n'), 1)}\n${k.gpu}`;
  else {
    // A step kernel copies the other slots of the history and computes slot t. The computation sits
    // inside the `if` rather than after an early return: gpu.js's webasm backend runs 4 lanes at a
    // time and only skips a loop when all lanes' condition is false (an early return skips nothing).
    const b = k.gpu.split('\n');
    const ret = /^ {2}return (.*);$/.exec(b[b.length - 1]);
    if (!ret) throw new Error(`internal: step kernel ${k.name} does not end in a return`);
    const compute = [...b.slice(0, -1), `  res = ${ret[1]};`].map((l) => '  ' + l).join('\n');
    body = [
      indent(lines.join('\n'), 1),
      '  let res = 0.0;',
      `  if (tt !== t) {`,
      `    res = ${k.args[0]}[idx];`,
      `  } else if (t < ${k.args[k.args.length - 1]}[i0]) {`,
      compute,
      '  }',
      '  return res;',
    ].join('\n');
  }
  const scalars = scalarsUsed(body);
  return { src: `function (${[...k.args, ...scalars].join(', ')}) {\n${body}\n}`, scalars };
}

function indent(s: string, n: number): string {
  return s
    .split('\n')
    .map((l) => (l.trim() ? '  '.repeat(n) + l.replace(/^ {2}/, '') : l))
    .join('\n');
}

/** An output's type: its known dims as literals, the symbolic ones (B, T, S) as number. */
function outputType(shape: readonly (number | string)[]): string {
  return `${RT}.Tensor<Float32Array, [${shape.map((d) => (typeof d === 'number' ? String(d) : 'number')).join(', ')}]>`;
}

function modelStatements(m: CompiledModel, P: string, first: boolean): (string | WriterFunction | StatementStructures)[] {
  const { ir, program } = m;
  const out = ir.graph.get(ir.graph.outputs[0].node);
  const outShape = `[${out.shape.join(', ')}]`;
  const fixedSteps = ir.graph.ordered().some((n) => n.op === 'flatten');
  const inputs = ir.inputs.map((i) => ({ name: i.name, form: i.form, vocab: i.vocab, dim: i.dim, maxLen: i.maxLen, fixedSteps: fixedSteps || undefined }));
  const manifestObj = {
    model: ir.name,
    inputs,
    output: { name: ir.output.name, shape: out.shape },
    weights: ir.weights.map((w) => ({ name: w.name, shape: w.shape, dtype: w.dtype, layer: w.layer })),
    decode: ir.decode,
  };
  const gen = program.plan.gen;
  const genInputs = gen ? (gen.seq2seq ? `Pick<${P}Inputs, ${q(ir.inputs[0].name)}>` : `${P}Inputs`) : `${P}Inputs`;
  const stmts: (string | WriterFunction | StatementStructures)[] = [];
  stmts.push({
    kind: StructureKind.VariableStatement,
    isExported: true,
    declarationKind: VariableDeclarationKind.Const,
    docs: [`Model ${ir.name}: its inputs, output and weights (names, shapes, dtypes, layer kinds, in load order).`],
    declarations: [{ name: `${P}Manifest`, initializer: JSON.stringify(manifestObj, null, 2) + ' as const' }],
  });
  stmts.push({
    kind: StructureKind.Interface,
    isExported: true,
    name: `${P}Inputs`,
    docs: [`Inputs of ${ir.name}.`],
    properties: ir.inputs.map((i) => ({
      name: i.name,
      type: i.form === 'tokens' ? `${RT}.TokensInput${m.text?.[i.name] ? ` | ${RT}.TextInput` : ''}` : `${RT}.VectorsInput`,
      docs: [i.form === 'tokens'
        ? `Token ids [B, ${i.time}] in [0, ${i.vocab}): { data: Int32Array | number[], shape: [B, ${i.time}], lengths? } or number[][].`
        : `Features [B, ${i.time}, ${i.dim}]: { data: Float32Array | number[], shape: [B, ${i.time}, ${i.dim}], lengths? } or number[][][].`],
    })),
  });
  stmts.push({
    kind: StructureKind.Interface,
    isExported: true,
    name: `${P}Outputs`,
    docs: [`Outputs of ${ir.name}.`],
    properties: [{ name: ir.output.name, type: outputType(out.shape), docs: [`${outShape}${ir.output.seq ? ' (0 at padded steps)' : ''}`] }],
  });
  stmts.push({
    kind: StructureKind.VariableStatement,
    declarationKind: VariableDeclarationKind.Const,
    declarations: [{
      name: `${P}_KERNELS`,
      type: `Readonly<Record<string, ${RT}.KernelDef>>`,
      initializer: (w) => {
        w.write('{').newLine();
        for (const k of program.kernels) {
          const g = gpuKernel(k);
          w.writeLine(`// ${k.label}`);
          w.writeLine(`${k.name}: {`);
          w.writeLine(`  name: ${q(`${P}.${k.name}`)},`);
          w.writeLine(`  step: ${k.time !== undefined},`);
          w.writeLine(`  scalars: ${JSON.stringify(g.scalars)},`);
          w.writeLine(`  gpu: ${q(g.src)},`);
          w.writeLine(`  cpu: ${indent(cpuKernel(k), 1).trimStart()},`);
          if (k.gemm) w.writeLine(`  gemm: ${indent(gemmKernel(k), 1).trimStart()},`);
          w.writeLine('},');
        }
        w.write('}');
      },
    }],
  });
  stmts.push({
    kind: StructureKind.VariableStatement,
    declarationKind: VariableDeclarationKind.Const,
    docs: ['The schedule, as data: what forward() runs, and what generate() runs per step.'],
    declarations: [{ name: `${P}_PLAN`, type: `${RT}.Plan`, initializer: JSON.stringify(program.plan, null, 1) }],
  });
  stmts.push({
    kind: StructureKind.TypeAlias,
    isExported: true,
    name: `${P}Model`,
    docs: [`${ir.name}, compiled by nnc. Create with create${P}(); load weights before forward()${gen ? ' or generate()' : ''}.`],
    type: `${RT}.NncModel<${P}Inputs, ${P}Outputs, ${genInputs}>`,
  });
  stmts.push({
    kind: StructureKind.Function,
    isExported: true,
    name: `create${P}`,
    docs: [`Creates a ${ir.name} model on the requested backend ('auto' by default).`],
    parameters: [{ name: 'options', type: `${RT}.CreateOptions`, initializer: '{}' }],
    returnType: `Promise<${P}Model>`,
    statements: [`return ${RT}.createNncModel<${P}Inputs, ${P}Outputs, ${genInputs}>(${P}Manifest, ${P}_KERNELS, ${P}_PLAN, options, import.meta.url);`],
  });
  if (m.text) {
    // text in, text out (docs/text.md): the generated ids are in the vocabulary of the input they are fed to
    const fed = gen ? ir.inputs[gen.seq2seq ? 1 : 0]!.name : undefined;
    const opts = { ...(fed !== undefined ? { generated: fed } : {}), ...(gen?.seq2seq ? { target: fed } : {}) };
    textStatements(stmts, P, m.text, ir.inputs.map((i) => i.name), opts.generated);
    const create = stmts.find((x): x is StatementStructures => typeof x === 'object' && 'name' in x && x.name === `create${P}`) as { statements: string[] };
    create.statements = [`${create.statements[0]!.replace(/;$/, '')}.then((m) => ${RT}.withText(m, ${P}Vocab, ${JSON.stringify(opts)}));`];
    const type = stmts.find((x): x is StatementStructures => typeof x === 'object' && 'name' in x && x.name === `${P}Model`) as { type: string };
    type.type = `${RT}.TextModel<${P}Inputs, ${P}Outputs, ${genInputs}>`;
  }
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
function textStatements(stmts: (string | WriterFunction | StatementStructures)[], P: string, text: Readonly<Record<string, VocabData>>, inputs: readonly string[], generated: string | undefined): void {
  stmts.push({
    kind: StructureKind.VariableStatement,
    isExported: true,
    declarationKind: VariableDeclarationKind.Const,
    docs: ['The vocabularies of its inputs (docs/text.md), by input name.'],
    declarations: [{ name: `${P}Vocab`, type: `Readonly<Record<string, ${RT}.VocabData>>`, initializer: JSON.stringify(text) }],
  });
  stmts.push({
    kind: StructureKind.VariableStatement,
    isExported: true,
    declarationKind: VariableDeclarationKind.Const,
    docs: ['encode(text, input?) → ids and decode(ids, input?) → text with its vocabularies, without creating a model.'],
    declarations: [{ name: `${P}Text`, type: `${RT}.TextMethods<${P}Inputs>`, initializer: `${RT}.textMethods<${P}Inputs>(${P}Vocab, ${JSON.stringify(inputs)}, ${generated === undefined ? 'undefined' : JSON.stringify(generated)})` }],
  });
}

/** An n-gram model (docs/ngram.md): manifest, types, its ngram statement as data, and a create function. */
function ngramStatements(m: NgramDecl, P: string, first: boolean): (string | WriterFunction | StatementStructures)[] {
  const V = m.input.vocab;
  const manifestObj = ngramManifest(m);
  const stmts: (string | WriterFunction | StatementStructures)[] = [];
  const textIn = m.text ? ` | ${RT}.TextInput` : '';
  stmts.push({
    kind: StructureKind.VariableStatement,
    isExported: true,
    declarationKind: VariableDeclarationKind.Const,
    docs: [`Model ${m.name} (an n-gram language model): its input and output; it has no weights (an ARPA file holds what it learns).`],
    declarations: [{ name: `${P}Manifest`, initializer: JSON.stringify(manifestObj, null, 2) + ' as const' }],
  });
  stmts.push({
    kind: StructureKind.Interface,
    isExported: true,
    name: `${P}Inputs`,
    docs: [`Inputs of ${m.name}.`],
    properties: [{ name: m.input.name, type: `${RT}.TokensInput${textIn}`, docs: [`Token ids [B, T] in [0, ${V})${m.text ? ', or text (each row after <s>)' : ''}.`] }],
  });
  stmts.push({
    kind: StructureKind.Interface,
    isExported: true,
    name: `${P}Outputs`,
    docs: [`Outputs of ${m.name}.`],
    properties: [{ name: m.output, type: `${RT}.Tensor<Float32Array, [number, number, ${V}]>`, docs: [`[B, T, ${V}]: log p(next token) after each position (0 at padded steps)`] }],
  });
  stmts.push({
    kind: StructureKind.VariableStatement,
    declarationKind: VariableDeclarationKind.Const,
    docs: ['Its ngram statement: order, smoothing and parameters, sentence boundary ids.'],
    declarations: [{ name: `${P}_NGRAM`, type: `${RT}.NgramSpec`, initializer: JSON.stringify(m.spec) }],
  });
  if (m.text) textStatements(stmts, P, { [m.input.name]: m.text }, [m.input.name], m.input.name);
  stmts.push({
    kind: StructureKind.TypeAlias,
    isExported: true,
    name: `${P}Model`,
    docs: [`${m.name}, an n-gram model compiled by nnc. Create with create${P}(); fit(corpus) or loadWeights(arpa) before forward() or generate().`],
    type: `${RT}.NgramModel<${P}Inputs, ${P}Outputs>`,
  });
  stmts.push({
    kind: StructureKind.Function,
    isExported: true,
    name: `create${P}`,
    docs: [`Creates a ${m.name} model (it runs on the CPU: an n-gram model has no kernels).`],
    parameters: [{ name: 'options', type: `${RT}.CreateOptions`, initializer: '{}' }],
    returnType: `Promise<${P}Model>`,
    statements: [`return ${RT}.createNgramModel<${P}Inputs, ${P}Outputs>(${P}Manifest, ${P}_NGRAM, ${m.text ? `${P}Vocab[${JSON.stringify(m.input.name)}]` : 'undefined'}, options);`],
  });
  if (first) stmts.push(...firstAliases(P, m.text !== undefined));
  return stmts;
}

export function emitModule(models: readonly (CompiledModel | NgramDecl)[], sourceName: string): string {
  const project = new Project({ useInMemoryFileSystem: true });
  const sf = project.createSourceFile('module.ts', '', { overwrite: true });
  const header = [
    `// Generated by nnc from ${sourceName}. Do not edit: change the .nn file and recompile.`,
    `// Models: ${models.map((m) => ('kind' in m ? m.name : m.ir.name)).join(', ')}.`,
    '/* eslint-disable */',
    `import * as ${RT} from 'nnc/runtime';`,
  ].join('\n');
  sf.addStatements([header]);
  const prefixes = modelPrefixes(models.map((m) => ('kind' in m ? m.name : m.ir.name)));
  models.forEach((m, i) => sf.addStatements('kind' in m ? ngramStatements(m, prefixes[i]!, i === 0) : modelStatements(m, prefixes[i]!, i === 0)));
  return sf.getFullText().replace(/[ \t]+$/gm, '') + (sf.getFullText().endsWith('\n') ? '' : '\n');
}
