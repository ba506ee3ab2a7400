/**
 * Expand: a checked model's chain of layers → a core-op graph, each layer through its registry
 * lowering. Shapes are inferred as nodes are built (src/ir/build.ts); user-caused size errors are
 * reported at the statement's span.
 */
import type { DiagnosticBag } from '../diagnostics/diagnostic.ts';
import { Builder, type WeightEntry } from '../ir/build.ts';
import { Graph } from '../ir/graph.ts';
import type { ModelIR } from '../ir/model.ts';
import type { ChainValue, DecoderCtx, LowerCtx, ModelFacts } from '../layers/layer.ts';
import { lastDim } from '../ir/graph.ts';
import type { OpAttrs } from '../ir/ops.ts';
import { LAYERS } from '../layers/registry.ts';
import type { ResolvedModel, ResolvedStatement } from '../syntax/resolved.ts';

export function expand(model: ResolvedModel, diags: DiagnosticBag): ModelIR {
  const g = new Graph();
  const weights: WeightEntry[] = [];
  const b = new Builder(g, diags, weights);
  const seq2seq = model.chain.some((s) => s.kind === 'encoder' || s.kind === 'decoder');
  const inputs = model.inputs.map((i, k) => ({
    name: i.name,
    form: i.form,
    vocab: i.attrs.vocab as number | undefined,
    dim: i.attrs.dim as number | undefined,
    maxLen: i.attrs.max_len as number | undefined,
    time: (seq2seq && k === 0 ? 'S' : 'T') as 'S' | 'T',
  }));
  const outputName = model.output?.name ?? 'output';
  const empty = (): ModelIR => ({ name: model.name, graph: g, weights, inputs, output: { name: outputName, seq: false }, span: model.span });
  if (inputs.length !== (seq2seq ? 2 : 1)) return empty(); // the checker has reported it
  const xs = inputs.map((inp, k) => b.input(inp.name, inp.form, inp.dim, model.inputs[k].span, inp.vocab, inp.maxLen, inp.time));
  const lens = inputs.map((inp, k) => b.lengths(inp.name, model.inputs[k].span));
  const start = (k: number): ChainValue => ({ node: xs[k], tokens: inputs[k].form === 'tokens', seq: true, vocab: inputs[k].vocab, steps: inputs[k].maxLen });
  const facts: ModelFacts = { readsAhead: new Map() };
  const chainWith = (k: number, dec?: DecoderCtx) => {
    const lengths = lens[k];
    const chain = (body: readonly ResolvedStatement[], v: ChainValue): ChainValue => {
      body.forEach((rs, i) => {
        const ctx: LowerCtx = { b, rs, lengths, chain, next: body[i + 1], dec, input: inputs[k].name, model: facts };
        v = LAYERS.get(rs.kind)!.lower(ctx, v);
      });
      return v;
    };
    return chain;
  };
  let y: ChainValue;
  const attentionOutputs: number[] = [];
  if (seq2seq) {
    const enc = model.chain.find((s) => s.kind === 'encoder')!;
    const decStmt = model.chain.find((s) => s.kind === 'decoder')!;
    const memory = chainWith(0)(enc.body ?? [], start(0));
    if (memory.tokens || !memory.seq) {
      diags.error('E0508', `the encoder's output is its memory, which decoder attention reads: it must be a sequence of feature vectors, but it is ${memory.tokens ? 'token ids' : 'one vector per row'}`, enc.stmt.kindSpan, {
        suggestion: memory.tokens ? `start the encoder with 'embedding dim = N'` : `remove the encoder's 'pool' / 'flatten'`,
      });
      return empty();
    }
    const dec = decoderCtx(b, decStmt, memory, lens[0], inputs[0].maxLen, attentionOutputs);
    y = chainWith(1, dec)(decStmt.body ?? [], start(1));
  } else {
    y = chainWith(0)(model.chain, start(0));
  }
  if (y.tokens && !diags.hasErrors) {
    diags.error('E0502', `model '${model.name}' returns its token ids unchanged: the chain has no layer that computes features`, model.span, {
      suggestion: `start the chain with 'embedding dim = N'`,
    });
  }
  const last = lens[lens.length - 1];
  const readsAhead = facts.readsAhead.get(inputs[inputs.length - 1].name);
  if (model.decode && !diags.hasErrors) checkGenerative(g, model, inputs[inputs.length - 1], xs[xs.length - 1], y, diags, readsAhead);
  const out = y.seq ? b.mask(y.node, last, model.span, `${outputName}.mask`) : y.node;
  g.outputs = [{ name: outputName, node: out }, ...attentionOutputs.map((node) => ({ name: 'attention', node }))];
  g.prune();
  return { name: model.name, graph: g, weights, inputs, output: { name: outputName, seq: y.seq }, decode: model.decode?.attrs, span: model.span, readsAhead };
}

/**
 * The decoder's view of the encoder (docs/seq2seq.md): the memory, and the initial state of each
 * decoder recurrent layer from `init = final | zeros | bridge`.
 */
function decoderCtx(b: Builder, decStmt: ResolvedStatement, memory: ChainValue, memoryLengths: number, sourceMaxLen: number | undefined, attentionOutputs: number[]): DecoderCtx {
  const mode = decStmt.attrs.init as 'final' | 'zeros' | 'bridge';
  const rec = memory.rec;
  const span = decStmt.stmt.span;
  /** Layer l's final state of the encoder's last recurrent statement: h [B, F] and (LSTM) c. */
  const finals = new Map<number, { h: number; c?: number }>();
  const finalOf = (l: number) => {
    const known = finals.get(l);
    if (known) return known;
    const r = rec!;
    const H = r.hidden;
    const one = (hist: number, mode: 'last' | 'first') => {
      const s = b.pool(hist, memoryLengths, mode, undefined, span, `encoder.final.l${l}${mode === 'first' ? '.reverse' : ''}`);
      return r.cell === 'lstm' ? { h: b.slice(s, 0, H, span, `encoder.final.l${l}.h`), c: b.slice(s, H, H, span, `encoder.final.l${l}.c`) } : { h: s };
    };
    const { fwd, bwd } = r.layers[l];
    const f = one(fwd, 'last');
    let res: { h: number; c?: number } = f;
    if (bwd !== undefined) {
      const bk = one(bwd, 'first');
      res = { h: b.concat(f.h, bk.h, span, `encoder.final.l${l}.h`), c: f.c === undefined ? undefined : b.concat(f.c, bk.c!, span, `encoder.final.l${l}.c`) };
    }
    finals.set(l, res);
    return res;
  };
  const zerosLike = (x: number) => b.binary('mul', x, b.constant(0, span), span, 'zeros');
  let bridge: { node: number; hidden: number } | undefined;
  const needRec = (rs: ResolvedStatement): boolean => {
    if (rec) return true;
    b.diags.error('E0507', `decoder init = ${mode} starts the decoder's '${rs.kind}' from the encoder's final state, but the encoder has no recurrent layer`, decStmt.stmt.kindSpan, {
      suggestion: `use 'decoder init = zeros', or add a recurrent layer to the encoder`,
    });
    return false;
  };
  const hasRecurrent = (body: readonly ResolvedStatement[]): boolean =>
    body.some((s) => ['rnn', 'gru', 'lstm'].includes(s.kind) || hasRecurrent(s.body ?? []) || (s.copies ?? []).some(hasRecurrent));
  return {
    memory: memory.node,
    memoryLengths,
    recurrent: hasRecurrent(decStmt.body ?? []),
    sourceMaxLen,
    attentionOutputs,
    initFor(rs, layer, layers, cell, hidden) {
      if (mode === 'zeros') return undefined;
      if (!needRec(rs)) return undefined;
      const r = rec!;
      if (mode === 'bridge') {
        const top = finalOf(r.layers.length - 1).h;
        const F = lastDim(b.shape(top));
        if (!bridge) {
          const w = b.param('decoder.bridge.weight', [hidden, F], 'linear', span);
          const bias = b.param('decoder.bridge.bias', [hidden], 'linear', span);
          bridge = { node: b.unary('tanh', b.matmul(top, w, bias, span, 'decoder.bridge'), span, 'decoder.bridge.tanh'), hidden };
        } else if (bridge.hidden !== hidden) {
          b.diags.error('E0507', `decoder init = bridge gives every decoder recurrent layer a ${bridge.hidden}-wide initial state, but '${rs.path}' has hidden = ${hidden}`, rs.stmt.kindSpan, {
            suggestion: `give the decoder's recurrent layers the same hidden size, or use 'decoder init = zeros'`,
          });
          return undefined;
        }
        return cell === 'lstm' ? b.concat(bridge.node, zerosLike(bridge.node), span, `${rs.path}.init`) : bridge.node;
      }
      // final: layer by layer when the layer counts match, else the encoder's top layer for every layer
      const src = r.layers.length === layers ? layer : r.layers.length - 1;
      const f = finalOf(src);
      const F = lastDim(b.shape(f.h));
      if (F !== hidden) {
        if (layer === 0) {
          b.diags.error('E0507', `'${rs.path}' (hidden = ${hidden}) cannot start from the encoder's final state, which is ${F} wide${r.layers[src].bwd !== undefined ? ' (forward and backward)' : ''}`, rs.stmt.kindSpan, {
            suggestion: `use 'decoder init = bridge' (a learned projection), make hidden = ${F}, or use 'decoder init = zeros'`,
          });
        }
        return undefined;
      }
      if (cell !== 'lstm') return f.h;
      return b.concat(f.h, f.c ?? zerosLike(f.h), span, `${rs.path}.init`);
    },
  };
}

/** A `decode` statement needs a model generate() can drive one token at a time (codegen/kernels.ts genPlan). */
function checkGenerative(g: Graph, model: ResolvedModel, inp: { name: string; form: string }, x: number, y: ChainValue, diags: DiagnosticBag, readsAhead: string | undefined): void {
  const at = model.decode!.stmt.kindSpan;
  const why = (reason: string, suggestion: string) => diags.error('E0513', `decode needs a model that predicts the next token at every step, but ${reason}`, at, { suggestion });
  if (inp.form !== 'tokens') return why(`its input '${inp.name}' is feature vectors, not tokens it could feed back`, `declare 'input ${inp.name}: tokens(vocab = V)', or remove the decode statement`);
  if (!y.seq) return why(`its output has no time axis (pool or flatten)`, `remove the decode statement, or the pool / flatten layer`);
  if (readsAhead) return why(`'${readsAhead}' attends to later tokens (self-attention without causal)`, `write 'attention self, causal' in a model that generates`);
  // a recurrence running backwards over the generated sequence would need tokens not generated yet
  const reads = new Set([x]);
  for (const n of g.ordered()) {
    if (!n.inputs.some((i) => reads.has(i))) continue;
    reads.add(n.id);
    if (n.op === 'scan' && (n.attrs as OpAttrs['scan']).reverse) {
      return why(`'${n.label.replace(/\.l\d+\.reverse$/, '')}' is bidirectional: each output reads later tokens`, `drop 'bidirectional' from the layers that read '${inp.name}', or remove the decode statement`);
    }
  }
}
