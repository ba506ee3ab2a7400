/** repeat and residual; encoder / decoder are lowered by passes/expand.ts (they are the model's two chains). */
import { decodeSchema, decoderSchema, encoderSchema, repeatSchema, residualSchema } from './blocks.schema.ts';
import { width, type LayerDef } from './layer.ts';
import { unsupported } from './unsupported.ts';

export const repeatLayer: LayerDef = {
  schema: repeatSchema,
  lower(ctx, x) {
    let v = x;
    for (const copy of ctx.rs.copies ?? []) v = ctx.chain(copy, v);
    return v;
  },
};

export const residualLayer: LayerDef = {
  schema: residualSchema,
  lower(ctx, x) {
    const { b, rs } = ctx;
    const y = ctx.chain(rs.body ?? [], x);
    if (x.tokens || y.tokens || x.seq !== y.seq || width(ctx, x) !== width(ctx, y)) {
      const what = (v: typeof x) => (v.tokens ? 'token ids' : `${v.seq ? '[B, T, ' : '[B, '}${width(ctx, v)}]`);
      b.diags.error('E0506', `residual adds its input ${what(x)} to its body's output ${what(y)}, which must have the same shape`, rs.stmt.kindSpan, {
        suggestion: `make the body's last layer produce ${x.tokens ? 'the same shape' : width(ctx, x)} features`,
      });
      return y;
    }
    return { ...y, node: b.binary('add', x.node, y.node, rs.stmt.span, rs.path), bidir: undefined };
  },
};

// top-level only (the checker enforces it): passes/expand.ts lowers their bodies as the model's two chains
export const encoderLayer: LayerDef = { schema: encoderSchema, lower: unsupported };
export const decoderLayer: LayerDef = { schema: decoderSchema, lower: unsupported };
/** `decode` is a directive, not part of the chain: passes/expand.ts records it. */
export const decodeLayer: LayerDef = { schema: decodeSchema, lower: (_ctx, x) => x };
