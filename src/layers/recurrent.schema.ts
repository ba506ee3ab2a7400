import { bool, int, oneOf, type AttrSpec, type KindSchema } from './schema.ts';
import { MAX_SIZE } from './limits.schema.ts';

const common: AttrSpec[] = [
  { name: 'hidden', type: int(1, MAX_SIZE), required: true, positional: true, doc: 'hidden state size per direction' },
  { name: 'layers', type: int(1, 64), default: 1, doc: 'stacked layers (PyTorch num_layers)' },
  { name: 'bidirectional', type: bool, default: false, doc: 'run a second, reversed pass and concatenate' },
  { name: 'bias', type: bool, default: true, doc: 'use b_ih and b_hh' },
  { name: 'merge', type: oneOf('concat', 'sum', 'mean'), default: 'concat', doc: 'how bidirectional outputs combine' },
];

export const rnnSchema: KindSchema = {
  kind: 'rnn', family: 'recurrent', shape: 'layer', doc: 'Elman RNN, h = act(W_ih x + b_ih + W_hh h + b_hh) (nn.RNN)',
  attrs: [...common, { name: 'act', type: oneOf('tanh', 'relu'), default: 'tanh', doc: 'nonlinearity' }],
};
export const gruSchema: KindSchema = {
  kind: 'gru', family: 'recurrent', shape: 'layer', doc: 'GRU (nn.GRU); reset = before is Cho et al.\'s form',
  attrs: [...common, { name: 'reset', type: oneOf('after', 'before'), default: 'after', doc: 'where the reset gate applies' }],
};
export const lstmSchema: KindSchema = {
  kind: 'lstm', family: 'recurrent', shape: 'layer', doc: 'LSTM (nn.LSTM)',
  attrs: common,
};
