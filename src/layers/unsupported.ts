import type { ChainValue, LowerCtx } from './layer.ts';

/** Lowering for kinds the language has but this compiler does not compile yet: a located error, never wrong output. */
export function unsupported(ctx: LowerCtx, x: ChainValue): ChainValue {
  ctx.b.diags.error('E0599', `'${ctx.rs.kind}' is part of the language but this version of nnc cannot compile it yet`, ctx.rs.stmt.kindSpan, {
    suggestion: `remove the '${ctx.rs.kind}' statement, or use a newer nnc`,
  });
  return x;
}
