/** linear, the activations, softmax / log_softmax, layernorm, dropout. */
import type { UnaryFn } from '../ir/ops.ts';
import * as s from './dense.schema.ts';
import { needsFeatures, width, type LayerDef } from './layer.ts';

export const linearLayer: LayerDef = {
  schema: s.linearSchema,
  lower(ctx, x) {
    const { b, rs } = ctx;
    if (!needsFeatures(ctx, x)) return x;
    const out = rs.attrs.out as number;
    const w = b.param(`${rs.path}.weight`, [out, width(ctx, x)], 'linear', rs.stmt.span);
    const bias = rs.attrs.bias ? b.param(`${rs.path}.bias`, [out], 'linear', rs.stmt.span) : undefined;
    return { ...x, node: b.matmul(x.node, w, bias, rs.stmt.span, rs.path), bidir: undefined };
  },
};

function elementwise(schema: LayerDef['schema'], fn: UnaryFn): LayerDef {
  return {
    schema,
    lower(ctx, x) {
      if (!needsFeatures(ctx, x)) return x;
      return { ...x, node: ctx.b.unary(fn, x.node, ctx.rs.stmt.span, ctx.rs.path), bidir: undefined };
    },
  };
}
export const tanhLayer = elementwise(s.tanhSchema, 'tanh');
export const sigmoidLayer = elementwise(s.sigmoidSchema, 'sigmoid');
export const reluLayer = elementwise(s.reluSchema, 'relu');
export const geluLayer = elementwise(s.geluSchema, 'gelu');

function softmax(schema: LayerDef['schema'], log: boolean): LayerDef {
  return {
    schema,
    lower(ctx, x) {
      if (!needsFeatures(ctx, x)) return x;
      return { ...x, node: ctx.b.softmax(x.node, log, ctx.rs.stmt.span, ctx.rs.path), bidir: undefined };
    },
  };
}
export const softmaxLayer = softmax(s.softmaxSchema, false);
export const logSoftmaxLayer = softmax(s.logSoftmaxSchema, true);

export const layernormLayer: LayerDef = {
  schema: s.layernormSchema,
  lower(ctx, x) {
    const { b, rs } = ctx;
    if (!needsFeatures(ctx, x)) return x;
    const d = width(ctx, x);
    const gamma = b.param(`${rs.path}.weight`, [d], 'layernorm', rs.stmt.span);
    const beta = b.param(`${rs.path}.bias`, [d], 'layernorm', rs.stmt.span);
    return { ...x, node: b.layernorm(x.node, gamma, beta, rs.attrs.eps as number, rs.stmt.span, rs.path), bidir: undefined };
  },
};

export const dropoutLayer: LayerDef = {
  schema: s.dropoutSchema,
  lower(ctx, x) {
    if (!needsFeatures(ctx, x) || (ctx.rs.attrs.p as number) === 0) return x;
    return { ...x, node: ctx.b.dropout(x.node, ctx.rs.attrs.p as number, ctx.rs.stmt.span, ctx.rs.path) };
  },
};
