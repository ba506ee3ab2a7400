/** A checked n-gram model (its `ngram` statement) as the generated module records it. */
import type { Smoothing } from '../runtime/ngram/smooth.ts';
import type { Attrs } from '../layers/schema.ts';
import type { ResolvedModel } from '../syntax/resolved.ts';
import type { VocabData } from '../runtime/text/vocab.ts';
import { parseLambdas } from './check.ts';
import type { NgramSpec } from '../runtime/ngram/model.ts';
import type { ModelManifest } from '../runtime/model.ts';
import { decodeDefaults } from '../runtime/options.ts';

export interface NgramDecl {
  readonly kind: 'ngram';
  readonly name: string;
  readonly input: { readonly name: string; readonly vocab: number; readonly maxLen?: number };
  readonly output: string;
  readonly spec: NgramSpec;
  readonly text?: VocabData;
  readonly decode?: Attrs;
}

/** The model's n-gram declaration; only called on a checked model without errors, which has its ngram statement, input and boundary tokens. */
export function ngramDecl(m: ResolvedModel): NgramDecl {
  const a = m.ngram!.attrs;
  const input = m.inputs[0]!;
  // the decode statement's bos / eos (written, or filled in from the vocabulary by the checker), else the vocabulary's
  const boundary = (r: 'bos' | 'eos'): number => (m.decode?.written.has(r) ? (m.decode.attrs[r] as number) : input.text!.specials[r]!);
  const spec: NgramSpec = {
    order: a['order'] as number,
    smoothing: a['smoothing'] as Smoothing,
    ...(a['alpha'] !== undefined ? { alpha: a['alpha'] as number } : {}),
    ...(typeof a['lambdas'] === 'string' ? { lambdas: parseLambdas(a['lambdas'])! } : {}),
    ...(a['k'] !== undefined ? { k: a['k'] as number } : {}),
    ...(a['discount'] !== undefined ? { discount: a['discount'] as number } : {}),
    ...(a['unigram'] !== undefined ? { unigram: a['unigram'] as 'smoothed' | 'ml' } : {}),
    bos: boundary('bos'),
    eos: boundary('eos'),
  };
  return {
    kind: 'ngram',
    name: m.name,
    input: { name: input.name, vocab: input.attrs['vocab'] as number, ...(input.attrs['max_len'] !== undefined ? { maxLen: input.attrs['max_len'] as number } : {}) },
    output: m.output?.name ?? 'output',
    spec,
    ...(input.text ? { text: input.text } : {}),
    ...(m.decode ? { decode: m.decode.attrs } : {}),
  };
}

/** The manifest of an n-gram model (what its generated module exports). */
export function ngramManifest(m: NgramDecl): ModelManifest {
  const V = m.input.vocab;
  return {
    model: m.name,
    inputs: [{ name: m.input.name, form: 'tokens', vocab: V, ...(m.input.maxLen !== undefined ? { maxLen: m.input.maxLen } : {}) }],
    output: { name: m.output, shape: ['B', 'T', V] },
    weights: [],
    ...(m.decode ? { decode: decodeDefaults(m.decode) } : {}),
  };
}
