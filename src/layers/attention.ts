/**
 * attention over the encoder memory (docs/seq2seq.md "Attention"): the ten scores of the brief,
 * softmax or sigmoid weights with padded source positions masked, and `heads = N` with
 * nn.MultiheadAttention's layout. Everything lowers to core ops (matmul, einsum, broadcasting
 * binaries, masked softmax, head views), so every kernel improvement applies to attention too.
 *
 * Key-side terms (W k, W₁ k, the key columns of concat/deep's first layer, key norms, projected
 * keys and values) depend only on the source: they are built in the outer graph, once per source,
 * and read by the decoder's steps (captured by the scan when attention sits inside it).
 *
 * Placement: before a recurrent layer (Bahdanau) the layer computes the attention inside its step
 * with its previous h as the query (recurrent.ts); anywhere else (Luong) the query is the incoming
 * value and the statement outputs [context; query].
 */
import type { Builder } from '../ir/build.ts';
import { lastDim } from '../ir/graph.ts';
import type { Span } from '../diagnostics/span.ts';
import { attentionSchema } from './attention.schema.ts';
import { needsFeatures, needsSequence, width, type ChainValue, type LayerDef, type LowerCtx } from './layer.ts';

const RECURRENT = new Set(['rnn', 'gru', 'lstm']);
const HEAD_SCORES = new Set(['dot', 'scaled', 'cosine']);

type Act = 'tanh' | 'relu' | 'sigmoid';

/** Outer-graph values an attention query reads: all depend on the source only. */
interface KeySide {
  /** The memory [B, S, Dk] (keys; values too without heads). */
  readonly keys: number;
  readonly lengths: number;
  /** Score-specific key terms, by name. */
  readonly terms: Readonly<Record<string, number>>;
}

interface Spec {
  readonly score: string;
  readonly causal: boolean;
  readonly act: Act;
  readonly dim: number;
  readonly depth: number;
  readonly heads?: number;
  readonly sigmoid: boolean;
  readonly self: boolean;
  readonly path: string;
  readonly span: Span;
  readonly Dq: number;
  readonly Dk: number;
}

export const attentionLayer: LayerDef = {
  schema: attentionSchema,
  lower(ctx, x) {
    const { b, rs } = ctx;
    if (rs.attrs.self) return selfAttention(ctx, x);
    if (!ctx.dec) {
      b.diags.error('E0509', `attention without 'self' reads an encoder's memory, but '${rs.path}' is not inside a decoder`, rs.stmt.kindSpan, {
        suggestion: `put it in a 'decoder { … }' block of a seq2seq model, or write 'attention self' to attend over this sequence`,
      });
      return x;
    }
    if (!needsFeatures(ctx, x) || !needsSequence(ctx, x)) return x;
    const dec = ctx.dec;
    const Dk = lastDim(b.shape(dec.memory));
    const bahdanau = ctx.next !== undefined && RECURRENT.has(ctx.next.kind);
    // the query: the next recurrent layer's previous h (Bahdanau), or the incoming value (Luong)
    const Dq = bahdanau ? (ctx.next!.attrs.hidden as number) : width(ctx, x);
    const spec = resolveSpec(ctx, Dq, Dk);
    if (!spec) return x;
    const keySide = prepareKeys(b, spec, dec.memory, dec.memoryLengths, dec.sourceMaxLen, rs.stmt.kindSpan);
    if (!keySide) return x;
    const dv = spec.heads ? spec.dim : Dk;
    if (bahdanau) {
      return {
        ...x,
        attend: {
          width: dv,
          span: rs.stmt.span,
          compute: (bb, q, cap) => {
            const ks: KeySide = { keys: cap(keySide.keys), lengths: cap(keySide.lengths), terms: Object.fromEntries(Object.entries(keySide.terms).map(([k, v]) => [k, cap(v)])) };
            return attendQuery(bb, spec, q, ks, false);
          },
        },
      };
    }
    const { context, weights } = attendQuery(b, spec, x.node, keySide, true);
    dec.attentionOutputs.push(weights);
    // a Transformer decoder (no recurrent layer) takes the context alone; after a recurrent layer (Luong) [context; h]
    if (!dec.recurrent) return { ...x, node: context, bidir: undefined };
    return { ...x, node: b.concat(context, x.node, rs.stmt.span, `${rs.path}.[context;h]`), bidir: undefined };
  },
};

/** `attention self`: queries, keys and values are the incoming sequence; padded keys masked, and with `causal` the future. */
function selfAttention(ctx: LowerCtx, x: ChainValue): ChainValue {
  const { b, rs } = ctx;
  if (!needsFeatures(ctx, x) || !needsSequence(ctx, x)) return x;
  const D = width(ctx, x);
  const spec = resolveSpec(ctx, D, D);
  if (!spec) return x;
  // causal: keys and values go through a cache, so that generate() feeds one token per step and
  // attends over all earlier ones (forward: the cache is empty); not causal: every output reads
  // later tokens, so a model with it cannot generate
  if (!spec.causal && !ctx.model.readsAhead.has(ctx.input)) ctx.model.readsAhead.set(ctx.input, rs.path);
  const lengths = spec.causal ? b.perRow('key_lengths', ctx.input, rs.stmt.span) : ctx.lengths;
  const keySide = prepareKeys(b, spec, x.node, lengths, x.steps, rs.stmt.kindSpan, spec.causal);
  if (!keySide) return x;
  // generate()'s `attention` reports alignments with the source (cross-attention), not these
  const { context } = attendQuery(b, spec, x.node, keySide, true);
  return { ...x, node: context, bidir: undefined };
}

function resolveSpec(ctx: LowerCtx, Dq: number, Dk: number): Spec | undefined {
  const { b, rs } = ctx;
  const heads = rs.attrs.heads as number | undefined;
  const score = heads !== undefined && !rs.written.has('score') ? 'scaled' : (rs.attrs.score as string);
  const span = rs.stmt.kindSpan;
  const dim = (rs.attrs.dim as number | undefined) ?? Dq;
  if (heads !== undefined) {
    if (!HEAD_SCORES.has(score)) {
      b.diags.error('E0510', `score = ${score} has its own parameters and cannot be applied per head; with heads, use score = scaled (nn.MultiheadAttention), dot or cosine`, span, {
        suggestion: `remove 'heads' to use score = ${score}, or use score = scaled`,
      });
      return undefined;
    }
    if (dim !== Dq) {
      b.diags.error('E0510', `with heads, the attention size is the query size (nn.MultiheadAttention's embed_dim = ${Dq}), but dim = ${dim}`, span, { suggestion: `remove 'dim'` });
      return undefined;
    }
    if (Dq % heads !== 0) {
      b.diags.error('E0510', `heads = ${heads} must divide the query size ${Dq}`, span, { suggestion: `use a number of heads that divides ${Dq}` });
      return undefined;
    }
  } else if ((score === 'dot' || score === 'scaled' || score === 'cosine') && Dq !== Dk) {
    b.diags.error('E0501', `score = ${score} compares the query (${Dq} wide) with the keys (the encoder memory, ${Dk} wide) directly, so their sizes must match`, span, {
      suggestion: `use score = general (a learned ${Dq}×${Dk} map), or make the sizes match`,
    });
    return undefined;
  }
  return {
    score, causal: !!rs.attrs.causal, act: rs.attrs.act as Act, dim, depth: rs.attrs.depth as number, heads,
    sigmoid: rs.attrs.normalize === 'sigmoid', self: !!rs.attrs.self, path: rs.path, span: rs.stmt.span, Dq, Dk,
  };
}

/** The source-only part: parameters and key terms, built once in the outer graph. */
function prepareKeys(b: Builder, s: Spec, memoryIn: number, lengths: number, maxLen: number | undefined, kindSpan: Span, cache = false): KeySide | undefined {
  const { span, path, Dq, Dk, dim } = s;
  // with a cache, projected keys/values (heads) or the keys themselves are kept across decoding steps
  const memory = cache && s.heads === undefined ? b.cached(memoryIn, `${path}.keys`, span) : memoryIn;
  const kept = (x: number, name: string) => (cache ? b.cached(x, `${path}.${name}`, span) : x);
  const p = (name: string, shape: number[]) => b.param(`${path}.${name}`, shape, 'attention', span);
  const terms: Record<string, number> = {};
  const mm = (x: number, w: number, bias: number | undefined, label: string) => b.matmul(x, w, bias, span, `${path}.${label}`);
  if (s.heads !== undefined) {
    const E = dim;
    let wq: number, wk: number, wv: number;
    if (Dk === E) {
      const w = p('in_proj_weight', [3 * E, E]);
      [wq, wk, wv] = [0, 1, 2].map((i) => b.rows(w, i * E, E, span));
    } else {
      wq = p('q_proj_weight', [E, E]);
      wk = p('k_proj_weight', [E, Dk]);
      wv = p('v_proj_weight', [E, Dk]);
    }
    const bias = p('in_proj_bias', [3 * E]);
    const [bq, bk, bv] = [0, 1, 2].map((i) => b.rows(bias, i * E, E, span));
    terms.wq = wq;
    terms.bq = bq;
    terms.k = b.splitHeads(kept(mm(memory, wk, bk, 'k (projected keys)'), 'k'), s.heads, span, `${path}.k heads`);
    terms.v = b.splitHeads(kept(mm(memory, wv, bv, 'v (projected values)'), 'v'), s.heads, span, `${path}.v heads`);
    terms.wo = p('out_proj.weight', [E, E]);
    terms.bo = p('out_proj.bias', [E]);
    if (s.score === 'cosine') terms.kn = b.einsum('bsn->bns', [sqrtSumSq(b, terms.k, 'bsnh->bsn', span, `${path}.|k|`)], 1, span, `${path}.|k| by head`);
    return { keys: memory, lengths, terms };
  }
  switch (s.score) {
    case 'dot':
    case 'scaled':
      break;
    case 'cosine':
      terms.kn = sqrtSumSq(b, memory, 'bsd->bs', span, `${path}.|k|`);
      break;
    case 'general':
    case 'activated_general':
      terms.wk = mm(memory, p('weight', [Dq, Dk]), undefined, 'W·k (keys, once per source)');
      if (s.score === 'activated_general') terms.bias = p('bias', [1]);
      break;
    case 'biased_general':
      terms.w = p('weight', [Dk, Dq]);
      terms.bias = p('bias', [Dk]);
      break;
    case 'concat': {
      const w = p('proj.weight', [dim, Dk + Dq]);
      const bias = p('proj.bias', [dim]);
      terms.kpart = mm(memory, b.cols(w, 0, Dk, span), undefined, 'W[k;·] (keys, once per source)');
      terms.wq = b.cols(w, Dk, Dq, span);
      terms.bias = bias;
      terms.v = p('v.weight', [1, dim]);
      break;
    }
    case 'additive':
      terms.kpart = mm(memory, p('key.weight', [dim, Dk]), undefined, 'W₁·k (keys, once per source)');
      terms.wq = p('query.weight', [dim, Dq]);
      terms.bias = p('bias', [dim]);
      terms.v = p('v.weight', [1, dim]);
      break;
    case 'deep': {
      const w0 = p('layers.0.weight', [dim, Dk + Dq]);
      terms.b0 = p('layers.0.bias', [dim]);
      terms.kpart = mm(memory, b.cols(w0, 0, Dk, span), undefined, 'W₀[k;·] (keys, once per source)');
      terms.wq = b.cols(w0, Dk, Dq, span);
      for (let l = 1; l < s.depth; l++) {
        terms[`w${l}`] = p(`layers.${l}.weight`, [dim, dim]);
        terms[`b${l}`] = p(`layers.${l}.bias`, [dim]);
      }
      terms.v = p('v.weight', [1, dim]);
      terms.vb = p('v.bias', [1]);
      break;
    }
    case 'location':
      if (maxLen === undefined) {
        b.diags.error('E0512', `score = location learns one score per key position, so the ${s.self ? 'input' : 'source input'} needs a max_len`, kindSpan, {
          suggestion: `declare it, e.g. 'input ${s.self ? 'text' : 'source'}: tokens(vocab = V, max_len = 50)'`,
        });
        return undefined;
      }
      terms.w = p('weight', [maxLen, Dq]);
      terms.bias = p('bias', [maxLen]);
      break;
    default:
      throw new Error(`internal: score ${s.score}`);
  }
  return { keys: memory, lengths, terms };
}

function sqrtSumSq(b: Builder, x: number, spec: string, span: Span, label: string): number {
  const [lhs] = spec.split('->');
  return b.unary('sqrt', b.einsum(`${lhs},${spec}`, [x, x], 1, span, `${label}²`), span, label);
}

function activate(b: Builder, act: Act, x: number, span: Span, label: string): number {
  return b.unary(act, x, span, label);
}

/**
 * Context and weights for a query: q [B, Dq] inside a step (`seq` false) or [B, T, Dq] for a whole
 * target sequence. Scores [B, (T,) S], weights likewise, context [B, (T,) Dv].
 */
function attendQuery(b: Builder, s: Spec, q: number, k: KeySide, seq: boolean): { context: number; weights: number } {
  const { span, path } = s;
  const P = seq ? 'bt' : 'b';
  const t = k.terms;
  const label = (x: string) => `${path}.${x}`;
  const normalize = (e: number) => {
    const rank = b.shape(e).length;
    return s.sigmoid
      ? b.mask(activate(b, 'sigmoid', e, span, label('sigmoid(e)')), k.lengths, span, label('α'), rank - 1, s.causal)
      : b.softmax(e, false, span, label('α'), k.lengths, s.causal);
  };
  if (s.heads !== undefined) {
    const N = s.heads;
    const hd = s.dim / N;
    const qh = b.splitHeads(b.matmul(q, t.wq, t.bq, span, label('q (projected)')), N, span, label('q heads'));
    const QH = seq ? 'btnh' : 'bnh';
    const E = seq ? 'bnts' : 'bns';
    let e = b.einsum(`${QH},bsnh->${E}`, [qh, t.k], s.score === 'scaled' ? 1 / Math.sqrt(hd) : 1, span, label('scores'));
    if (s.score === 'cosine') {
      const qn = sqrtSumSq(b, qh, `${QH}->${QH.slice(0, -1)}`, span, label('|q|'));
      const qnh = seq ? b.unsqueeze(b.einsum('btn->bnt', [qn], 1, span, label('|q| by head')), 3, span, label('|q|')) : b.unsqueeze(qn, 2, span, label('|q|'));
      const knh = seq ? b.unsqueeze(t.kn, 2, span, label('|k|')) : t.kn;
      e = cosineDivide(b, e, qnh, knh, span, label);
    }
    const a = normalize(e);
    const ctxh = b.einsum(`${E},bsnh->${QH}`, [a, t.v], 1, span, label('α·v'));
    const context = b.matmul(b.mergeHeads(ctxh, span, label('heads merged')), t.wo, t.bo, span, label('out_proj'));
    const weights = b.einsum(`${E}->${P}s`, [a], 1 / N, span, label('α (mean over heads)'));
    return { context, weights };
  }
  const dotWith = (keys: number, scale: number, name: string) => b.einsum(`${P}d,bsd->${P}s`, [q, keys], scale, span, label(name));
  /** [B, (T,) dim] query part + [B, S, dim] key part → [B, (T,) S, dim] */
  const pair = (qpart: number, kpart: number) =>
    seq
      ? b.binary('add', b.unsqueeze(qpart, 2, span, label('q part')), b.unsqueeze(kpart, 1, span, label('k part')), span, label('q + k'))
      : b.binary('add', b.unsqueeze(qpart, 1, span, label('q part')), kpart, span, label('q + k'));
  const vdot = (h: number, v: number) => b.einsum(`${P}sd,od->${P}s`, [h, v], 1, span, label('scores'));
  let e: number;
  switch (s.score) {
    case 'dot':
      e = dotWith(k.keys, 1, 'scores q·k');
      break;
    case 'scaled':
      e = dotWith(k.keys, 1 / Math.sqrt(s.Dk), 'scores q·k/√d');
      break;
    case 'cosine': {
      const qn = sqrtSumSq(b, q, `${P}d->${P}`, span, label('|q|'));
      e = cosineDivide(b, dotWith(k.keys, 1, 'q·k'), b.unsqueeze(qn, seq ? 2 : 1, span, label('|q|')), seq ? b.unsqueeze(t.kn, 1, span, label('|k|')) : t.kn, span, label);
      break;
    }
    case 'general':
      e = dotWith(t.wk, 1, 'scores qᵀWk');
      break;
    case 'activated_general':
      e = activate(b, s.act, b.binary('add', dotWith(t.wk, 1, 'qᵀWk'), t.bias, span, label('qᵀWk + b')), span, label('scores'));
      break;
    case 'biased_general':
      // kᵀ(Wq + b): q's projection contracted with the keys
      e = b.einsum(`${P}d,bsd->${P}s`, [b.matmul(q, t.w, t.bias, span, label('Wq + b')), k.keys], 1, span, label('scores kᵀ(Wq + b)'));
      break;
    case 'concat':
    case 'additive': {
      const qpart = b.matmul(q, t.wq, s.score === 'concat' ? t.bias : undefined, span, label(s.score === 'concat' ? 'W[·;q] + b' : 'W₂q'));
      let h = pair(qpart, t.kpart);
      if (s.score === 'additive') h = b.binary('add', h, t.bias, span, label('+ b'));
      e = vdot(activate(b, s.act, h, span, label('act')), t.v);
      break;
    }
    case 'deep': {
      let h = activate(b, s.act, b.binary('add', pair(b.matmul(q, t.wq, undefined, span, label('W₀[·;q]')), t.kpart), t.b0, span, label('E₁ pre')), span, label('E₁'));
      for (let l = 1; l < s.depth; l++) h = activate(b, s.act, b.matmul(h, t[`w${l}`], t[`b${l}`], span, label(`E${l + 1} pre`)), span, label(`E${l + 1}`));
      e = b.binary('add', vdot(h, t.v), t.vb, span, label('scores'));
      break;
    }
    case 'location':
      e = b.slice(b.matmul(q, t.w, t.bias, span, label('Wq + b (per position)')), 0, b.shape(k.keys)[1] as 'S' | 'T', span, label('scores'));
      break;
    default:
      throw new Error(`internal: score ${s.score}`);
  }
  const a = normalize(e);
  const context = b.einsum(`${P}s,bsd->${P}d`, [a, k.keys], 1, span, label('context Σα·k'));
  return { context, weights: a };
}

function cosineDivide(b: Builder, dot: number, qn: number, kn: number, span: Span, label: (x: string) => string): number {
  const norms = b.binary('max', b.binary('mul', qn, kn, span, label('|q||k|')), b.constant(1e-8, span), span, label('max(|q||k|, 1e-8)'));
  return b.binary('div', dot, norms, span, label('scores cos(q, k)'));
}
