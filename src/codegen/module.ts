/**
 * Module assembly (ts-morph): one TypeScript module per .nn file. It imports the runtime from
 * `nnc/runtime` and holds, per model, its manifest, input/output types, kernel table (CPU loop
 * nests and gpu.js sources around the shared bodies) and plan (the schedule, as data), and a typed
 * create function.
 */
import { Project, StructureKind, VariableDeclarationKind, type StatementStructures, type WriterFunction } from 'ts-morph';
import type { ModelIR } from '../ir/model.ts';
import type { KernelCode, Program } from './kernels.ts';
import { SCALARS } from './kernels.ts';

export interface CompiledModel {
  readonly ir: ModelIR;
  readonly program: Program;
}

const q = (s: string) => JSON.stringify(s);

function pascal(s: string): string {
  return s.replace(/(^|_)([a-z0-9])/g, (_, __, c: string) => c.toUpperCase());
}

/** The scalars (symbolic sizes, t, tp) a kernel's source uses, in SCALARS order. */
function scalarsUsed(src: string): string[] {
  return SCALARS.filter((n) => new RegExp(`\\b${n}\\b`).test(src));
}

/** A CPU kernel: the loop nest around the shared body. */
function cpuKernel(k: KernelCode): string {
  const unpack = k.args.length ? `  const [${k.args.join(', ')}] = a;\n` : '';
  const idx = k.dims.map((_, i) => `i${i}`);
  let code: string;
  if (k.time !== undefined) {
    // Slot t of the history [B, L, S], one batch row at a time: the row is computed into `dst` and
    // only then copied in, so no element reads a value another element of this step wrote (the
    // previous state may be the history itself). Padded steps are 0. A two-halves state
    // (KernelCode.pairHalf) computes both halves per body.
    const len = k.args[k.args.length - 1];
    const S = k.dims[1];
    const body = k.pairHalf !== undefined
      ? `  const f = (i0: number, i1: number, dst: Float32Array): void => {\n${indent(k.cpu, 2)}\n  };\n`
      : `  const f = (i0: number, i1: number): number => {\n${indent(k.cpu, 2)}\n  };\n`;
    const fill = k.pairHalf !== undefined ? `for (let i1 = 0; i1 < ${k.pairHalf}; i1++) f(i0, i1, dst);` : `for (let i1 = 0; i1 < ${S}; i1++) dst[i1] = f(i0, i1);`;
    code = `${unpack}${body}  const dst = new Float32Array(${S});\n  for (let i0 = 0; i0 < B; i0++) {\n    const row = (i0 * ${k.time} + t) * ${S};\n    if (t < ${len}[i0]) {\n      ${fill}\n      out.set(dst, row);\n    } else out.fill(0, row, row + ${S});\n  }\n`;
  } else {
    const f = `  const f = (${idx.map((i) => `${i}: number`).join(', ')}): number => {\n${indent(k.cpu, 2)}\n  };\n`;
    let loops = '';
    idx.forEach((v, i) => (loops += `${'  '.repeat(i + 1)}for (let ${v} = 0; ${v} < ${k.dims[i]}; ${v}++)\n`));
    code = `${unpack}${f}  let o = 0;\n${loops}${'  '.repeat(idx.length + 1)}out[o++] = f(${idx.join(', ')});\n`;
  }
  const sc = scalarsUsed(code);
  return `(out, a, s) => {\n${sc.length ? `  const { ${sc.join(', ')} } = s;\n` : ''}${code}}`;
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

function modelStatements(m: CompiledModel, first: boolean): (string | WriterFunction | StatementStructures)[] {
  const { ir, program } = m;
  const P = pascal(ir.name);
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
      type: 'InputTensor',
      docs: [i.form === 'tokens' ? `Token ids [B, ${i.time}] in [0, ${i.vocab}); optional lengths per row.` : `Features [B, ${i.time}, ${i.dim}]; optional lengths per row.`],
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
      name: `${P}_KERNELS`,
      type: 'Record<string, KernelDef>',
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
    declarations: [{ name: `${P}_PLAN`, type: 'Plan', initializer: JSON.stringify(program.plan, null, 1) }],
  });
  stmts.push({
    kind: StructureKind.TypeAlias,
    isExported: true,
    name: `${P}Model`,
    docs: [`${ir.name}, compiled by nnc. Create with create${P}(); load weights before forward()${gen ? ' or generate()' : ''}.`],
    type: `NncModel<${P}Inputs, ${P}Outputs, ${genInputs}>`,
  });
  stmts.push({
    kind: StructureKind.Function,
    isExported: true,
    name: `create${P}`,
    docs: [`Creates a ${ir.name} model on the requested backend ('auto' by default).`],
    parameters: [{ name: 'options', type: 'CreateOptions', initializer: '{}' }],
    returnType: `Promise<${P}Model>`,
    statements: [`return createNncModel<${P}Inputs, ${P}Outputs, ${genInputs}>(${P}Manifest, ${P}_KERNELS, ${P}_PLAN, options);`],
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
  const header = [
    `// Generated by nnc from ${sourceName}. Do not edit: change the .nn file and recompile.`,
    `// Models: ${models.map((m) => m.ir.name).join(', ')}.`,
    '/* eslint-disable */',
    `import { createNncModel, type CreateOptions, type InputTensor, type KernelDef, type NncModel, type Plan, type Tensor } from 'nnc/runtime';`,
  ].join('\n');
  sf.addStatements([header]);
  models.forEach((m, i) => sf.addStatements(modelStatements(m, i === 0)));
  return sf.getFullText().replace(/[ \t]+$/gm, '') + (sf.getFullText().endsWith('\n') ? '' : '\n');
}
