/**
 * The gpu.js renderer: a kernel as the source of a gpu.js kernel function, one thread per output
 * element of a flat 1-D output. The thread's index is decomposed into the element's indices (the
 * +0.5 guards against an inexact division on GPUs) and the per-element body follows. Its
 * parameters are the kernel's buffers, then the scalars it reads, in SCALARS order.
 */
import { SCALARS, add, bin, call, f, int, load, mul, product, scalar, stmtUses, sub, v, type Expr, type Kernel, type Scalar, type Stmt } from '../kir.ts';
import { GPU, Printer } from './print.ts';

const gpu = new Printer(GPU);

export function renderGpu(k: Kernel): { src: string; scalars: Scalar[] } {
  const step = k.step;
  const dims: readonly Expr[] = step ? [scalar('B'), step.time, int(step.width)] : k.dims;
  const names = step ? ['i0', 'tt', 'i1'] : dims.map((_, i) => `i${i}`);
  const stmts: Stmt[] = [{ k: 'const', name: 'idx', value: { k: 'thread' } }];
  let rest: Expr = v('idx');
  dims.forEach((_, i) => {
    if (i === dims.length - 1) {
      stmts.push({ k: 'const', name: names[i]!, value: rest });
      return;
    }
    const stride = product(dims.slice(i + 1));
    stmts.push({ k: 'const', name: names[i]!, value: call('floor', bin('/', add(rest, f(0.5)), stride)) });
    stmts.push({ k: 'const', name: `rem${i}`, value: sub(rest, mul(v(names[i]!), stride)) });
    rest = v(`rem${i}`);
  });
  if (!step) stmts.push(...k.body);
  else {
    // A step kernel copies the other slots of the history and computes slot t. The computation sits
    // inside the `if` rather than after an early return: gpu.js's webasm backend runs 4 lanes at a
    // time and only skips a loop when all lanes' condition is false (an early return skips nothing).
    const body = k.body.slice(0, -1);
    const last = k.body[k.body.length - 1];
    if (last?.k !== 'return' || stmtUses(body).vars.has('res') || hasReturn(body)) throw new Error('internal: a step kernel body must end in its only return');
    stmts.push(
      { k: 'let', name: 'res', value: f(0) },
      {
        k: 'if', c: bin('!==', v('tt'), scalar('t')), then: [{ k: 'set', name: 'res', value: load({ k: 'arg', i: 0 }, v('idx')) }],
        else: [{ k: 'if', c: bin('<', scalar('t'), load({ k: 'arg', i: k.params.length - 1 }, v('i0'))), then: [...body, { k: 'set', name: 'res', value: last.value }] }],
      },
      { k: 'return', value: v('res') },
    );
  }
  const uses = stmtUses(stmts);
  const scalars = SCALARS.filter((s) => uses.scalars.has(s));
  const params = [...k.params.map((_, i) => `b${i}`), ...scalars];
  return { src: [`function (${params.join(', ')}) {`, ...gpu.stmts(stmts, 1), '}'].join('\n'), scalars };
}

function hasReturn(ss: readonly Stmt[]): boolean {
  return ss.some((s) => s.k === 'return' || (s.k === 'for' && hasReturn(s.body)) || (s.k === 'block' && hasReturn(s.body)) || (s.k === 'if' && (hasReturn(s.then) || (!!s.else && hasReturn(s.else)))));
}
