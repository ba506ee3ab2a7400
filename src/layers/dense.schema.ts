import { bool, float, int, type KindSchema } from './schema.ts';
import { MAX_EPS, MAX_SIZE } from './limits.schema.ts';

export const linearSchema: KindSchema = {
  kind: 'linear', family: 'dense', shape: 'layer', doc: 'affine map on the last axis (nn.Linear)',
  attrs: [
    { name: 'out', type: int(1, MAX_SIZE), required: true, positional: true, doc: 'output features' },
    { name: 'bias', type: bool, default: true, doc: 'add a learned bias' },
  ],
};
const act = (kind: string, doc: string): KindSchema => ({ kind, family: 'activation', shape: 'layer', doc, attrs: [] });
export const tanhSchema = act('tanh', 'elementwise tanh');
export const sigmoidSchema = act('sigmoid', 'elementwise logistic sigmoid');
export const reluSchema = act('relu', 'elementwise max(x, 0)');
export const geluSchema = act('gelu', 'elementwise exact GELU, x·Φ(x) (erf form)');
export const softmaxSchema = act('softmax', 'softmax over the last axis');
export const logSoftmaxSchema = act('log_softmax', 'log-softmax over the last axis');
export const layernormSchema: KindSchema = {
  kind: 'layernorm', family: 'dense', shape: 'layer', doc: 'layer normalisation over the last axis (nn.LayerNorm)',
  attrs: [{ name: 'eps', type: float(0, MAX_EPS, true), default: 1e-5, doc: 'added to the variance' }],
};
export const dropoutSchema: KindSchema = {
  kind: 'dropout', family: 'dense', shape: 'layer', doc: 'identity at inference (nn.Dropout)',
  attrs: [{ name: 'p', type: float(0, 1), default: 0.5, positional: true, doc: 'drop probability (training only)' }],
};
