import { bool, int, oneOf, type KindSchema } from './schema.ts';
import { MAX_DEPTH, MAX_HEADS, MAX_SIZE } from './limits.schema.ts';

export const SCORES = ['dot', 'scaled', 'general', 'biased_general', 'activated_general', 'concat', 'additive', 'deep', 'location', 'cosine'] as const;

export const attentionSchema: KindSchema = {
  kind: 'attention', family: 'attention', shape: 'layer', doc: 'attention over a memory or the sequence itself',
  attrs: [
    { name: 'score', type: oneOf(...SCORES), default: 'dot', doc: 'compatibility function' },
    { name: 'heads', type: int(1, MAX_HEADS), doc: 'multi-head projections (nn.MultiheadAttention layout)' },
    { name: 'self', type: bool, default: false, doc: 'queries, keys and values are the incoming sequence' },
    { name: 'causal', type: bool, default: false, doc: 'mask future positions' },
    { name: 'normalize', type: oneOf('softmax', 'sigmoid'), default: 'softmax', doc: 'how scores become weights' },
    { name: 'dim', type: int(1, MAX_SIZE), doc: 'attention size (default: the query size)' },
    { name: 'act', type: oneOf('tanh', 'relu', 'sigmoid'), default: 'tanh', doc: 'score activation' },
    { name: 'depth', type: int(1, MAX_DEPTH), default: 2, doc: 'layers of the deep score' },
  ],
};
