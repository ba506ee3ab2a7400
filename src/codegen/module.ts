/**
 * Module assembly (ts-morph): one self-contained TypeScript module per .nn file — the embedded
 * runtime, then per model its manifest, input/output types, kernel table (CPU loop nests and
 * gpu.js sources around the shared bodies) and a model class whose `forward` is the schedule.
 */
import { readFileSync } from 'node:fs';
import { Project, StructureKind, VariableDeclarationKind, type StatementStructures, type WriterFunction } from 'ts-morph';
import type { ModelIR } from '../ir/model.ts';
import type { Instr, KernelCode, Program } from './kernels.ts';
import { SCALARS } from './kernels.ts';

const RUNTIME_PATH = new URL('../runtime/runtime.ts', import.meta.url);

export interface CompiledModel {
  readonly ir: ModelIR;
  readonly program: Program;
}

const q = (s: string) => JSON.stringify(s);

function pascal(s: string): string {
  return s.replace(/(^|_)([a-z0-9])/g, (_, __, c: string) => c.toUpperCase());
}

/** A CPU kernel: the loop nest around the shared body. */
function cpuKernel(k: KernelCode): string {
  const unpack = k.args.length ? `  const [${k.args.join(', ')}] = a;\n` : '';
  const idx = k.dims.map((_, i) => `i${i}`);
  const f = `  const f = (${idx.map((i) => `${i}: number`).join(', ')}): number => {\n${indent(k.cpu, 2)}\n  };\n`;
  if (k.step) {
    // Slot t of the history [B, T, S], one batch row at a time: the row is computed into `dst` and
    // only then copied in, so no element reads a value another element of this step wrote (the
    // state comes from slot tp, which is slot t itself — still zero — before the first step).
    // Padded steps are 0. A two-halves state (KernelCode.pairHalf) computes both halves per body.
    const len = k.args[k.args.length - 1];
    const S = k.dims[1];
    const body = k.pairHalf !== undefined
      ? `  const f = (i0: number, i1: number, dst: Float32Array): void => {\n${indent(k.cpu, 2)}\n  };\n`
      : `  const f = (i0: number, i1: number): number => {\n${indent(k.cpu, 2)}\n  };\n`;
    const fill = k.pairHalf !== undefined ? `for (let i1 = 0; i1 < ${k.pairHalf}; i1++) f(i0, i1, dst);` : `for (let i1 = 0; i1 < ${S}; i1++) dst[i1] = f(i0, i1);`;
    return `(out, a, B, T, t, tp) => {\n${unpack}${body}  const dst = new Float32Array(${S});\n  for (let i0 = 0; i0 < B; i0++) {\n    const row = (i0 * T + t) * ${S};\n    if (t < ${len}[i0]) {\n      ${fill}\n      out.set(dst, row);\n    } else out.fill(0, row, row + ${S});\n  }\n}`;
  }
  let loops = '';
  idx.forEach((v, i) => (loops += `${'  '.repeat(i + 1)}for (let ${v} = 0; ${v} < ${k.dims[i]}; ${v}++)\n`));
  return `(out, a, B, T, t, tp) => {\n${unpack}${f}  let o = 0;\n${loops}${'  '.repeat(idx.length + 1)}out[o++] = f(${idx.join(', ')});\n}`;
}

/** A gpu.js kernel source: one thread per output element of a flat 1-D output. */
function gpuKernel(k: KernelCode): string {
  const params = [...k.args, ...SCALARS].join(', ');
  const dims = k.step ? [k.dims[0], 'T', k.dims[1]] : [...k.dims];
  const lines = ['const idx = this.thread.x;'];
  // decompose the flat index (the +0.5 guards against an inexact division on GPUs)
  let rest = 'idx';
  const names = k.step ? ['i0', 'tt', 'i1'] : dims.map((_, i) => `i${i}`);
  for (let i = 0; i < dims.length; i++) {
    if (i === dims.length - 1) {
      lines.push(`const ${names[i]} = ${rest};`);
      break;
    }
    const stride = dims.slice(i + 1).join(' * ');
    lines.push(`const ${names[i]} = Math.floor((${rest} + 0.5) / (${stride}));`);
    lines.push(`const r${i} = ${rest} - ${names[i]} * (${stride});`);
    rest = `r${i}`;
  }
  if (!k.step) return `function (${params}) {\n${indent(lines.join('\n'), 1)}\n${k.gpu}\n}`;
  // A step kernel copies the other slots of the history and computes slot t. The computation sits
  // inside the `if` rather than after an early return: gpu.js's webasm backend runs 4 lanes at a
  // time and only skips a loop when all lanes' condition is false (an early return skips nothing).
  const body = k.gpu.split('\n');
  const ret = /^ {2}return (.*);$/.exec(body[body.length - 1]);
  if (!ret) throw new Error(`internal: step kernel ${k.name} does not end in a return`);
  const compute = [...body.slice(0, -1), `  res = ${ret[1]};`].map((l) => '  ' + l).join('\n');
  return [
    `function (${params}) {`,
    indent(lines.join('\n'), 1),
    '  let res = 0.0;',
    `  if (tt !== t) {`,
    `    res = ${k.args[0]}[idx];`,
    `  } else if (t < ${k.args[k.args.length - 1]}[i0]) {`,
    compute,
    '  }',
    '  return res;',
    '}',
  ].join('\n');
}

function indent(s: string, n: number): string {
  return s
    .split('\n')
    .map((l) => (l.trim() ? '  '.repeat(n) + l.replace(/^ {2}/, '') : l))
    .join('\n');
}

/** The forward schedule as straight-line code. */
function scheduleCode(m: CompiledModel, K: string): string[] {
  const lines: string[] = [];
  const sc = `[B, T, 0, 0]`;
  const emit = (i: Instr, scalars: string, temps: string, pad: string) => {
    if (i.op === 'run') {
      lines.push(`${pad}const ${i.out} = ${temps}(await ex.run(${K}.${i.kernel}, [${i.args.join(', ')}], ${scalars}, ${i.size}));`);
      return;
    }
    lines.push(`${pad}// ${i.label}: recurrence over ${i.reverse ? 't = T-1 … 0' : 't = 0 … T-1'}`);
    lines.push(`${pad}let ${i.out} = ex.zeros(${i.size});`);
    lines.push(`${pad}for (let s = 0; s < T; s++) {`);
    const t = i.reverse ? 'T - 1 - s' : 's';
    lines.push(`${pad}  const t = ${t};`);
    // tp: the slot holding the previous state; before the first step, slot t itself (still zero)
    lines.push(`${pad}  const sc = [B, T, t, ${i.reverse ? 'Math.min(t + 1, T - 1)' : 'Math.max(t - 1, 0)'}];`);
    if (i.body.length) lines.push(`${pad}  const stepTemps: unknown[] = [];`, `${pad}  const stepKeep = <V>(v: V): V => (stepTemps.push(v), v);`);
    for (const b of i.body) emit(b, 'sc', 'stepKeep', pad + '  ');
    lines.push(`${pad}  ${i.out} = await ex.step(${K}.${i.step}, ${i.out}, [${i.args.join(', ')}], sc, ${i.size});`);
    if (i.body.length) lines.push(`${pad}  for (const v of stepTemps) ex.release(v);`);
    lines.push(`${pad}}`);
    lines.push(`${pad}keep(${i.out});`);
  };
  for (const i of m.program.instrs) emit(i, sc, 'keep', '');
  return lines;
}

function modelStatements(m: CompiledModel, first: boolean): (string | WriterFunction | StatementStructures)[] {
  const { ir, program } = m;
  const P = pascal(ir.name);
  const K = `${P}_KERNELS`;
  const out = ir.graph.get(ir.graph.outputs[0].node);
  const outShape = `[${out.shape.join(', ')}]`;
  const outSize = out.shape.map(String).join(' * ');
  const inputsNode = ir.graph.ordered().filter((n) => n.op === 'input');
  const lengthsNode = ir.graph.ordered().filter((n) => n.op === 'lengths');
  const fixedSteps = ir.graph.ordered().some((n) => n.op === 'flatten');
  const inputs = ir.inputs.map((i) => ({ name: i.name, form: i.form, vocab: i.vocab, dim: i.dim, maxLen: i.maxLen, fixedSteps: fixedSteps || undefined }));
  const manifestObj = {
    model: ir.name,
    inputs,
    output: { name: ir.output.name, shape: out.shape },
    weights: ir.weights.map((w) => ({ name: w.name, shape: w.shape, dtype: w.dtype, layer: w.layer })),
    decode: ir.decode,
  };
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
      type: 'InputTensor',
      docs: [i.form === 'tokens' ? `Token ids [B, T] in [0, ${i.vocab}); optional lengths per row.` : `Features [B, T, ${i.dim}]; optional lengths per row.`],
    })),
  });
  stmts.push({
    kind: StructureKind.Interface,
    isExported: true,
    name: `${P}Outputs`,
    docs: [`Outputs of ${ir.name}.`],
    properties: [{ name: ir.output.name, type: 'Tensor', docs: [`${outShape}${ir.output.seq ? ' (0 at padded steps)' : ''}`] }],
  });
  stmts.push({
    kind: StructureKind.VariableStatement,
    declarationKind: VariableDeclarationKind.Const,
    declarations: [{
      name: K,
      type: 'Record<string, KernelDef>',
      initializer: (w) => {
        w.write('{').newLine();
        for (const k of program.kernels) {
          w.writeLine(`// ${k.label}`);
          w.writeLine(`${k.name}: {`);
          w.writeLine(`  name: ${q(`${P}.${k.name}`)},`);
          w.writeLine(`  step: ${k.step},`);
          w.writeLine(`  gpu: ${q(gpuKernel(k))},`);
          w.writeLine(`  cpu: ${indent(cpuKernel(k), 1).trimStart()},`);
          w.writeLine('},');
        }
        w.write('}');
      },
    }],
  });
  const paramEntries = [...program.params.entries()];
  stmts.push({
    kind: StructureKind.Class,
    isExported: true,
    name: `${P}Model`,
    docs: [`${ir.name}, compiled by nnc. Create with create${P}(); load weights before forward().`],
    properties: [
      { name: 'backend', isReadonly: true, type: 'BackendName', docs: ['The backend that actually runs.'] },
      { name: 'device', isReadonly: true, type: 'string', docs: ['What runs underneath (e.g. gpu.js headlessgl).'] },
      { name: 'manifest', isReadonly: true, initializer: `${P}Manifest` },
      { name: 'ex', scope: undefined, type: 'Executor | undefined', hasQuestionToken: false },
      { name: 'w', type: 'Record<string, unknown> | undefined' },
    ],
    ctors: [{ parameters: [{ name: 'ex', type: 'Executor' }], statements: ['this.ex = ex;', 'this.backend = ex.backend;', 'this.device = ex.device;'] }],
    methods: [
      {
        name: 'loadWeights',
        docs: ['Loads safetensors bytes or a { name: Float32Array } map holding exactly the manifest\'s weights.'],
        parameters: [{ name: 'src', type: 'Uint8Array | ArrayBuffer | Record<string, Float32Array>' }],
        returnType: 'void',
        statements: [
          `const ex = this.live();`,
          `const m = weightMap(src, ${P}Manifest.weights);`,
          `this.releaseWeights();`,
          `this.w = {`,
          ...paramEntries.map(([name, b]) => `  ${b}: ex.upload(m.get(${q(name)})!),`),
          `};`,
        ],
      },
      {
        name: 'forward',
        isAsync: true,
        docs: [`Runs the model on a batch. Padded steps (beyond each row's length) never affect valid ones; their outputs are 0.`],
        parameters: [{ name: 'inputs', type: `${P}Inputs` }],
        returnType: `Promise<${P}Outputs>`,
        statements: [
          `const ex = this.live();`,
          `const w = this.w;`,
          `if (!w) throw new NncError('forward() before loadWeights(): load the ${ir.name} weights first');`,
          `const named = checkInputNames(inputs, ${P}Manifest.inputs);`,
          ...inputs.map((i, n) => `const x${n} = prepareInput(${P}Manifest.inputs[${n}], named[${q(i.name)}]);`),
          `const { B, T } = x0;`,
          `const temps: unknown[] = [];`,
          `const keep = <V>(v: V): V => (temps.push(v), v);`,
          ...paramEntries.map(([, b]) => `const ${b} = w.${b};`),
          `try {`,
          ...inputsNode.map((n, k) => `  const n${n.id} = keep(ex.upload(x${k}.data));`),
          ...lengthsNode.map((n, k) => `  const n${n.id} = keep(ex.upload(x${k}.lengths));`),
          ...scheduleCode(m, K).map((l) => '  ' + l),
          `  const data = await ex.read(${program.output}, ${outSize});`,
          `  return { ${ir.output.name}: { data, shape: ${outShape} } };`,
          `} finally {`,
          `  for (const v of temps) ex.release(v);`,
          `}`,
        ],
      },
      {
        name: 'dispose',
        docs: ['Frees the weights and kernels; the model cannot be used afterwards.'],
        returnType: 'void',
        statements: ['this.releaseWeights();', 'this.ex?.dispose();', 'this.ex = undefined;'],
      },
      {
        name: 'live',
        scope: undefined,
        returnType: 'Executor',
        statements: [`if (!this.ex) throw new NncError('this ${ir.name} model was disposed');`, 'return this.ex;'],
      },
      {
        name: 'releaseWeights',
        returnType: 'void',
        statements: ['if (this.w && this.ex) for (const v of Object.values(this.w)) this.ex.release(v);', 'this.w = undefined;'],
      },
    ],
  });
  stmts.push({
    kind: StructureKind.Function,
    isExported: true,
    isAsync: true,
    name: `create${P}`,
    docs: [`Creates a ${ir.name} model on the requested backend ('auto' by default).`],
    parameters: [{ name: 'options', type: 'CreateOptions', initializer: '{}' }],
    returnType: `Promise<${P}Model>`,
    statements: [`return new ${P}Model(await createExecutor(options));`],
  });
  if (first) {
    stmts.push(
      `/** The first model of the file. */\nexport const createModel = create${P};`,
      `export const manifest = ${P}Manifest;`,
      `export type Inputs = ${P}Inputs;`,
      `export type Outputs = ${P}Outputs;`,
      `export type Model = ${P}Model;`,
    );
  }
  return stmts;
}

export function emitModule(models: readonly CompiledModel[], sourceName: string): string {
  const project = new Project({ useInMemoryFileSystem: true });
  const sf = project.createSourceFile('module.ts', '', { overwrite: true });
  const runtime = readFileSync(RUNTIME_PATH, 'utf8');
  const header = [
    `// Generated by nnc from ${sourceName}. Do not edit: change the .nn file and recompile.`,
    `// Models: ${models.map((m) => m.ir.name).join(', ')}.`,
    '/* eslint-disable */',
  ].join('\n');
  sf.addStatements([header, runtime.trim()]);
  models.forEach((m, i) => sf.addStatements(modelStatements(m, i === 0)));
  return sf.getFullText().replace(/[ \t]+$/gm, '') + (sf.getFullText().endsWith('\n') ? '' : '\n');
}
