/**
 * The CPU renderer: a kernel as a TypeScript function `(out, a, s) => void` over Float32Arrays —
 * the per-element body as a closure `f`, wrapped in the loop nest over the output (or, for a step
 * kernel, over the rows of slot t of the history). It type-checks under a strict app tsconfig:
 * reads are `x[i]!` (every index is in range by construction), scalars come from a typed object,
 * unused parameters are named with a leading `_`. The host renderer (host.ts) reuses its loop nests.
 */
import { SCALARS, exprUses, mergeUses, newUses, stmtUses, type Kernel, type Stmt, type Uses } from '../kir.ts';
import { CPU, Printer } from './print.ts';

export const cpu = new Printer(CPU);

/** `name: type`, or `_name: type` when the code does not read it. */
export function param(name: string, used: boolean, type?: string): string {
  return `${used ? name : `_${name}`}${type ? `: ${type}` : ''}`;
}

/** The loop nest that evaluates a per-element body (or a step's pair body) over a kernel's output, and what it reads. */
export function loopNest(k: Kernel, body: readonly Stmt[], rowBuffer: string, depth: number): { lines: string[]; uses: Uses } {
  const uses = stmtUses(body);
  const ind = '  '.repeat(depth);
  const lines: string[] = [];
  const used = (name: string) => uses.vars.has(name);
  if (k.step) {
    // Slot t of the history [B, L, S], one batch row at a time: the row is computed into `dst` and
    // only then copied in, so no element reads a value another element of this step wrote (the
    // previous state may be the history itself). Padded steps are 0. A two-halves state computes
    // both halves per body.
    const { time, width, pair } = k.step;
    const lengths = `b${k.params.length - 1}`;
    const nest = newUses();
    for (const s of ['B', 't'] as const) nest.scalars.add(s);
    exprUses(time, nest);
    nest.args.add(k.params.length - 1);
    nest.out = true;
    mergeUses(uses, nest);
    lines.push(pair
      ? `${ind}const f = (${param('i0', used('i0'), 'number')}, ${param('i1', used('i1'), 'number')}, ${param('dst', uses.row, 'Float32Array')}): void => {`
      : `${ind}const f = (${param('i0', used('i0'), 'number')}, ${param('i1', used('i1'), 'number')}): number => {`);
    cpu.stmts(body, depth + 1, lines);
    lines.push(
      `${ind}};`,
      `${ind}const dst = ${rowBuffer};`,
      `${ind}for (let i0 = 0; i0 < B; i0++) {`,
      `${ind}  const row = (i0 * ${cpu.expr(time)} + t) * ${width};`,
      `${ind}  if (t < ${lengths}[i0]!) {`,
      pair ? `${ind}    for (let i1 = 0; i1 < ${pair.half}; i1++) f(i0, i1, dst);` : `${ind}    for (let i1 = 0; i1 < ${width}; i1++) dst[i1] = f(i0, i1);`,
      `${ind}    out.set(dst, row);`,
      `${ind}  } else out.fill(0, row, row + ${width});`,
      `${ind}}`,
    );
    return { lines, uses };
  }
  if (k.parts) {
    const { width } = k.parts;
    lines.push(`${ind}const f = (${param('i0', used('i0'), 'number')}, ${param('i1', used('i1'), 'number')}): void => {`);
    cpu.stmts(body, depth + 1, lines);
    lines.push(`${ind}};`, `${ind}for (let i0 = 0; i0 < ${cpu.expr(k.dims[0]!)}; i0++)`, `${ind}  for (let i1 = 0; i1 < ${width}; i1++) f(i0, i1);`);
    exprUses(k.dims[0]!, uses);
    uses.out = true;
    return { lines, uses };
  }
  const idx = k.dims.map((_, i) => `i${i}`);
  lines.push(`${ind}const f = (${idx.map((i) => param(i, used(i), 'number')).join(', ')}): number => {`);
  cpu.stmts(body, depth + 1, lines);
  lines.push(`${ind}};`, `${ind}let o = 0;`);
  idx.forEach((i, d) => lines.push(`${ind}${'  '.repeat(d)}for (let ${i} = 0; ${i} < ${cpu.expr(k.dims[d]!)}; ${i}++)`));
  lines.push(`${ind}${'  '.repeat(idx.length)}out[o++] = f(${idx.join(', ')});`);
  for (const d of k.dims) exprUses(d, uses);
  uses.out = true;
  return { lines, uses };
}


/** `const { B, T } = s;` and `const b0 = a[0]!, …;` for what the code reads. */
export function unpack(uses: Uses, depth: number): string[] {
  const ind = '  '.repeat(depth);
  const sc = SCALARS.filter((s) => uses.scalars.has(s));
  const args = [...uses.args].sort((x, y) => x - y);
  return [
    ...(sc.length ? [`${ind}const { ${sc.join(', ')} } = s;`] : []),
    ...(args.length ? [`${ind}const ${args.map((i) => `b${i} = a[${i}]!`).join(', ')};`] : []),
  ];
}

/** The kernel's CPU function. */
export function renderCpu(k: Kernel): string {
  const body = k.step?.pair ? k.step.pair.body : k.parts ? k.parts.body : k.body;
  const nest = loopNest(k, body, `new Float32Array(${k.step?.width ?? 0})`, 1);
  const u = nest.uses;
  return [`(${param('out', u.out)}, ${param('a', u.args.size > 0)}, ${param('s', u.scalars.size > 0)}) => {`, ...unpack(u, 1), ...nest.lines, '}'].join('\n');
}
