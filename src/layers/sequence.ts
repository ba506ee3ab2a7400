/** embedding, positional, pool, flatten: the layers that know about tokens and time. */
import type { PoolMode } from '../ir/ops.ts';
import { embeddingSchema, flattenSchema, poolSchema, positionalSchema } from './sequence.schema.ts';
import { needsFeatures, needsSequence, width, type LayerDef } from './layer.ts';

export const embeddingLayer: LayerDef = {
  schema: embeddingSchema,
  lower(ctx, x) {
    const { b, rs } = ctx;
    if (!x.tokens) {
      b.diags.error('E0504', `embedding looks up token ids, but its input is already feature vectors`, rs.stmt.kindSpan, {
        suggestion: `use 'input NAME: tokens(vocab = V)' for the model input, or remove the embedding`,
      });
      return x;
    }
    const vocab = (rs.attrs.vocab as number | undefined) ?? x.vocab ?? 1;
    if (x.vocab !== undefined && vocab < x.vocab) {
      b.diags.error('E0501', `embedding vocab = ${vocab} is smaller than the input's vocab = ${x.vocab}: ids ${vocab}..${x.vocab - 1} would read past the table`, rs.stmt.span, {
        suggestion: `remove 'vocab' from the embedding (it defaults to the input's), or set vocab = ${x.vocab}`,
      });
    }
    const table = b.param(`${rs.path}.weight`, [vocab, rs.attrs.dim as number], 'embedding', rs.stmt.span);
    return { ...x, tokens: false, node: b.gather(table, x.node, rs.stmt.span, rs.path) };
  },
};

export const poolLayer: LayerDef = {
  schema: poolSchema,
  lower(ctx, x) {
    const { b, rs } = ctx;
    if (!needsSequence(ctx, x) || !needsFeatures(ctx, x)) return x;
    const mode = rs.attrs.mode as PoolMode;
    const span = rs.stmt.span;
    if (mode !== 'last' || !x.bidir) return { node: b.pool(x.node, ctx.lengths, mode, undefined, span, rs.path), tokens: false, seq: false };
    // after a bidirectional layer: forward state at the last valid step, backward state at step 0
    const { halves, hidden: H, merge } = x.bidir;
    const hn = b.pool(halves, ctx.lengths, 'last', H, span, rs.path);
    if (merge === 'concat') return { node: hn, tokens: false, seq: false };
    const sum = b.binary('add', b.slice(hn, 0, H, span, `${rs.path}.forward`), b.slice(hn, H, H, span, `${rs.path}.backward`), span, `${rs.path}.${merge}`);
    return { node: merge === 'sum' ? sum : b.unary('half', sum, span, `${rs.path}.mean`), tokens: false, seq: false };
  },
};

export const flattenLayer: LayerDef = {
  schema: flattenSchema,
  lower(ctx, x) {
    const { b, rs } = ctx;
    if (!needsSequence(ctx, x) || !needsFeatures(ctx, x)) return x;
    if (x.steps === undefined) {
      b.diags.error('E0505', `flatten needs a fixed number of steps, but the input declares no max_len`, rs.stmt.kindSpan, {
        suggestion: `declare the window on the input, e.g. 'input ctx: tokens(vocab = V, max_len = 4)'`,
      });
      return x;
    }
    return { node: b.flatten(x.node, x.steps, rs.stmt.span, rs.path), tokens: false, seq: false };
  },
};

/** x + PE[t]: Vaswani's sinusoids (computed in the kernel) or a learned table (nn.Embedding(max_len, dim)). */
export const positionalLayer: LayerDef = {
  schema: positionalSchema,
  lower(ctx, x) {
    const { b, rs } = ctx;
    if (!needsFeatures(ctx, x) || !needsSequence(ctx, x)) return x;
    const D = width(ctx, x);
    const span = rs.stmt.span;
    const pos = b.positions(x.node, ctx.input, span, `${rs.path}.positions`);
    let pe: number;
    if (rs.attrs.kind === 'learned') {
      const L = (rs.attrs.max_len as number | undefined) ?? x.steps;
      if (L === undefined) {
        b.diags.error('E0514', `positional learned has one learned vector per position, so it needs a max_len`, rs.stmt.kindSpan, {
          suggestion: `write 'positional learned, max_len = N', or declare max_len on the input`,
        });
        return x;
      }
      if (x.steps !== undefined && x.steps > L) {
        b.diags.error('E0514', `positional learned has ${L} positions, but the input has max_len = ${x.steps}`, rs.stmt.span, {
          suggestion: `use max_len = ${x.steps} or more`,
        });
        return x;
      }
      pe = b.gather(b.param(`${rs.path}.weight`, [L, D], 'positional', span), pos, span, `${rs.path}.W[t]`);
    } else pe = b.sinusoid(pos, D, span, `${rs.path}.PE[t]`);
    return { ...x, node: b.binary('add', x.node, pe, span, rs.path), bidir: undefined };
  },
};
