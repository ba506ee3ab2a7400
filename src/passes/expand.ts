/**
 * Expand: a checked model's chain of layers → a core-op graph, each layer through its registry
 * lowering. Shapes are inferred as nodes are built (src/ir/build.ts); user-caused size errors are
 * reported at the statement's span.
 */
import type { DiagnosticBag } from '../diagnostics/diagnostic.ts';
import { Builder, type WeightEntry } from '../ir/build.ts';
import { Graph } from '../ir/graph.ts';
import type { ModelIR } from '../ir/model.ts';
import type { ChainValue, LowerCtx } from '../layers/layer.ts';
import { LAYERS } from '../layers/registry.ts';
import type { ResolvedModel, ResolvedStatement } from '../syntax/resolved.ts';

export function expand(model: ResolvedModel, diags: DiagnosticBag): ModelIR {
  const g = new Graph();
  const weights: WeightEntry[] = [];
  const b = new Builder(g, diags, weights);
  const inputs = model.inputs.map((i) => ({
    name: i.name,
    form: i.form,
    vocab: i.attrs.vocab as number | undefined,
    dim: i.attrs.dim as number | undefined,
    maxLen: i.attrs.max_len as number | undefined,
    time: 'T' as const,
  }));
  const outputName = model.output?.name ?? 'output';
  if (inputs.length !== 1) {
    // seq2seq (two inputs) comes with encoder/decoder lowering; the checker has reported the rest.
    if (inputs.length > 1) diags.error('E0599', `seq2seq models (two inputs) are part of the language but this version of nnc cannot compile them yet`, model.inputs[1].span);
    return { name: model.name, graph: g, weights, inputs, output: { name: outputName, seq: false }, span: model.span };
  }
  const inp = inputs[0];
  const x = b.input(inp.name, inp.form, inp.dim, model.inputs[0].span, inp.vocab, inp.maxLen);
  const lengths = b.lengths(inp.name, model.inputs[0].span);
  const chain = (body: readonly ResolvedStatement[], v: ChainValue): ChainValue => {
    for (const rs of body) {
      const ctx: LowerCtx = { b, rs, lengths, chain };
      v = LAYERS.get(rs.kind)!.lower(ctx, v);
    }
    return v;
  };
  const y = chain(model.chain, { node: x, tokens: inp.form === 'tokens', seq: true, vocab: inp.vocab, steps: inp.maxLen });
  if (y.tokens && !diags.hasErrors) {
    diags.error('E0502', `model '${model.name}' returns its token ids unchanged: the chain has no layer that computes features`, model.span, {
      suggestion: `start the chain with 'embedding dim = N'`,
    });
  }
  if (model.decode) {
    diags.add({
      code: 'W0598',
      severity: 'warning',
      message: `decode is recorded in the module's manifest, but this version of nnc does not emit generate() yet`,
      span: model.decode.stmt.kindSpan,
      suggestion: 'call forward() and pick tokens from its output, or remove the decode statement',
    });
  }
  const out = y.seq ? b.mask(y.node, lengths, model.span, `${outputName}.mask`) : y.node;
  g.outputs = [{ name: outputName, node: out }];
  g.prune();
  return { name: model.name, graph: g, weights, inputs, output: { name: outputName, seq: y.seq }, decode: model.decode?.attrs, span: model.span };
}
