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
import { LAYERS } from '../layers/registry.ts';
import type { ResolvedModel, ResolvedStatement } from '../syntax/resolved.ts';
import { generability, type Generability } from './generate.ts';

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
  const failed: Generability = { ok: false, reason: 'it does not compile', suggestion: 'fix the errors above' };
  const empty = (): ModelIR => ({ name: model.name, graph: g, weights, inputs, output: { name: outputName, seq: false }, span: model.span, generate: failed });
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
  const generate = diags.hasErrors ? failed : generability(g, inputs, g.get(y.node), y.seq, facts.readsAhead.get(inputs[inputs.length - 1].name));
  if (model.decode && !diags.hasErrors) checkDecode(model, inputs[inputs.length - 1], generate, lastDim(g.get(y.node).shape), diags);
  const out = y.seq ? b.mask(y.node, last, model.span, `${outputName}.mask`) : y.node;
  g.outputs = [{ name: outputName, node: out }, ...attentionOutputs.map((node) => ({ name: 'attention', node }))];
  g.prune();
  return { name: model.name, graph: g, weights, inputs, output: { name: outputName, seq: y.seq }, decode: model.decode?.attrs, span: model.span, generate };
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

/**
 * A `decode` statement needs a model generate() can drive one token at a time (passes/generate.ts
 * decides that, E0513), and its bos and eos must be ids the model can take and produce (E0518).
 */
function checkDecode(model: ResolvedModel, inp: { name: string; vocab?: number }, generate: Generability, classes: number, diags: DiagnosticBag): void {
  const dec = model.decode!;
  if (!generate.ok) {
    diags.error('E0513', `decode needs a model that predicts the next token at every step, but ${generate.reason}`, dec.stmt.kindSpan, { suggestion: generate.suggestion });
    return;
  }
  const at = (name: string) => dec.stmt.items.find((it) => it.name === name)?.span ?? dec.stmt.kindSpan;
  const bos = dec.attrs['bos'];
  if (typeof bos === 'number' && bos >= inp.vocab!) {
    diags.error('E0518', `decode bos = ${bos} is not a token of input '${inp.name}' (vocab = ${inp.vocab}): generation feeds bos to the model as its first token`, at('bos'), {
      suggestion: `use a bos below ${inp.vocab}, or raise the input's vocab`,
    });
  }
  const eos = dec.attrs['eos'];
  if (typeof eos === 'number' && eos >= classes) {
    diags.error('E0518', `decode eos = ${eos} is not one of the ${classes} classes of the model's output: it could never be generated`, at('eos'), {
      suggestion: `use an eos below ${classes}`,
    });
  }
}
