import { int, oneOf, type KindSchema } from './schema.ts';
import { MAX_SIZE } from './limits.schema.ts';

export const embeddingSchema: KindSchema = {
  kind: 'embedding', family: 'embedding', shape: 'layer', doc: 'token id → vector lookup (nn.Embedding)',
  attrs: [
    { name: 'dim', type: int(1, MAX_SIZE), required: true, positional: true, doc: 'embedding size' },
    { name: 'vocab', type: int(1, MAX_SIZE), doc: 'table rows (default: the input\'s vocab)' },
  ],
};
export const positionalSchema: KindSchema = {
  kind: 'positional', family: 'embedding', shape: 'layer', doc: 'add a position encoding (Vaswani §3.5)',
  attrs: [
    { name: 'kind', type: oneOf('sinusoidal', 'learned'), default: 'sinusoidal', positional: true, doc: 'encoding' },
    { name: 'max_len', type: int(1, MAX_SIZE), doc: 'positions (required for learned; default: the input\'s max_len)' },
  ],
};
export const poolSchema: KindSchema = {
  kind: 'pool', family: 'sequence', shape: 'layer', doc: 'sequence → vector over the valid (unpadded) steps',
  attrs: [{ name: 'mode', type: oneOf('last', 'first', 'mean', 'max'), default: 'last', positional: true, doc: 'reduction' }],
};
export const flattenSchema: KindSchema = {
  kind: 'flatten', family: 'sequence', shape: 'layer', doc: '[B, T, D] → [B, T·D] for fixed windows (needs the input\'s max_len)',
  attrs: [],
};
