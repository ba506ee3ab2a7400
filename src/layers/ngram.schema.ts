import { SMOOTHINGS } from '../runtime/ngram/smooth.ts';
import { float, int, oneOf, str, type KindSchema } from './schema.ts';

/** The largest n-gram order. */
export const MAX_ORDER = 10;

export const ngramSchema: KindSchema = {
  kind: 'ngram', family: 'count-based', shape: 'layer', doc: 'an n-gram language model fitted by counting (docs/ngram.md); the only statement of its model',
  attrs: [
    { name: 'order', type: int(1, MAX_ORDER), required: true, positional: true, doc: 'n: the context is the n − 1 tokens before' },
    { name: 'smoothing', type: oneOf(...SMOOTHINGS), default: 'kneser_ney', doc: 'how counts become probabilities' },
    { name: 'alpha', type: float(0, undefined, true), doc: 'additive: the pseudo-count α (default 1, Laplace); stupid_backoff: the back-off factor (default 0.4)' },
    { name: 'lambdas', type: str('the interpolation weights'), doc: 'interpolated: the weights, highest order first, then the uniform distribution (unigram = ml: without it), e.g. "0.6 0.3 0.09 0.01"; default: tuned on held-out data' },
    { name: 'k', type: int(1, 100), doc: 'katz: counts up to k are discounted (Good–Turing; default 5)' },
    { name: 'discount', type: float(0, undefined, true), doc: 'kneser_ney: one fixed discount D instead of D1, D2, D3+ from counts of counts' },
    { name: 'unigram', type: oneOf('smoothed', 'ml'), doc: "the lowest order: 'smoothed' (default) spreads mass over every token of the vocabulary; 'ml' is maximum likelihood, as NLTK (unseen tokens get probability 0; stupid_backoff's only choice)" },
  ],
};
