/**
 * The host renderer: a kernel's host form (kir.ts HostForm) as `{ scratch, run }` for the host
 * backends (host.ts in the runtime): `scratch(s)` gives the scratch buffers' sizes, `run(x, out, a,
 * g, s)` runs the prelude (packing loops, `x.gemm`, `x.pack`, `x.act` calls on the host's routines,
 * with the call site's packed weight blocks in `x.packs`) and then the epilogue in the CPU loop nest.
 * A step kernel's row buffer is one more scratch buffer, so nothing is allocated per step.
 */
import { SCALARS, exprUses, mergeUses, newUses, stmtUses, type Kernel } from '../kir.ts';
import { cpu, loopNest, param, unpack } from './cpu.ts';

export function renderHost(k: Kernel): string {
  const h = k.host!;
  const rowScratch = k.step && h.epilogue ? h.scratch.length : undefined;
  const sizes = rowScratch !== undefined ? [...h.scratch, { k: 'i' as const, v: k.step!.width }] : [...h.scratch];
  const uses = stmtUses(h.prelude);
  const lines = cpu.stmts(h.prelude, 2);
  if (h.epilogue) {
    const nest = loopNest(k, h.epilogue, `g[${rowScratch}]!`, 2);
    lines.push(...nest.lines);
    mergeUses(uses, nest.uses);
  }
  const scratch = [...uses.scratch].sort((x, y) => x - y);
  const usesG = scratch.length > 0 || rowScratch !== undefined;
  const sizeUses = newUses();
  for (const e of sizes) exprUses(e, sizeUses);
  const sizeScalars = SCALARS.filter((s) => sizeUses.scalars.has(s));
  const list = `[${sizes.map((e) => cpu.expr(e)).join(', ')}]`;
  return [
    '{',
    `  scratch: (${param('s', sizeScalars.length > 0)}) => ${sizeScalars.length ? `{ const { ${sizeScalars.join(', ')} } = s; return ${list}; }` : list},`,
    `  run: (${param('x', uses.host)}, ${param('out', uses.out)}, ${param('a', uses.args.size > 0)}, ${param('g', usesG)}, ${param('s', uses.scalars.size > 0)}) => {`,
    ...unpack(uses, 2),
    ...(scratch.length ? [`    const ${scratch.map((i) => `gm${i} = g[${i}]!`).join(', ')};`] : []),
    ...lines,
    '  },',
    '}',
  ].join('\n');
}
