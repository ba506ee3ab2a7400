/**
 * Spec errors of encoder–decoder models, attention and positions (docs/diagnostics.md E0507–E0514):
 * each bad spec gives exactly its located diagnostic, with the fix in the suggestion.
 */
import { describe, expect, it } from 'vitest';
import { compile } from '../src/driver.ts';

const s2s = (encoder: string, decoder: string, init = '', source = 'tokens(vocab = 9)') =>
  `model M {\n  input source: ${source}\n  input target: tokens(vocab = 8)\n  output y\n  encoder {\n${encoder}\n  }\n  decoder${init} {\n${decoder}\n  }\n}\n`;

const cases: [string, string, string, RegExp, RegExp][] = [
  ['init = final with a size mismatch', s2s('    embedding dim = 4\n    gru hidden = 6', '    embedding dim = 4\n    gru hidden = 5\n    linear 8'), 'E0507', /cannot start from the encoder's final state, which is 6 wide/, /init = bridge/],
  ['init = bridge without an encoder recurrent layer', s2s('    embedding dim = 4\n    linear 6', '    embedding dim = 4\n    gru hidden = 5\n    linear 8', ' init = bridge'), 'E0507', /encoder has no recurrent layer/, /init = zeros/],
  ['an encoder that pools its memory away', s2s('    embedding dim = 4\n    gru hidden = 6\n    pool mean', '    embedding dim = 4\n    gru hidden = 6\n    linear 8', ' init = zeros'), 'E0508', /must be a sequence of feature vectors/, /pool/],
  ['attention without self outside a decoder', 'model M {\n  input text: tokens(vocab = 9)\n  output y\n  embedding dim = 4\n  attention score = dot\n  linear 3\n}\n', 'E0509', /not inside a decoder/, /attention self/],
  ['heads with a parametrised score', s2s('    embedding dim = 4\n    gru hidden = 4', '    embedding dim = 4\n    gru hidden = 4\n    attention score = additive, heads = 2\n    linear 8'), 'E0510', /cannot be applied per head/, /score = scaled/],
  ['heads that do not divide the query', s2s('    embedding dim = 4\n    gru hidden = 5', '    embedding dim = 4\n    gru hidden = 5\n    attention heads = 2\n    linear 8'), 'E0510', /must divide the query size 5/, /divides 5/],
  ['a bidirectional decoder layer', s2s('    embedding dim = 4\n    gru hidden = 4', '    embedding dim = 4\n    gru hidden = 4, bidirectional\n    linear 8', ' init = zeros'), 'E0511', /run forward only/, /encoder/],
  ['location without max_len on the source', s2s('    embedding dim = 4\n    gru hidden = 4', '    embedding dim = 4\n    attention score = location\n    gru hidden = 4\n    linear 8'), 'E0512', /needs a max_len/, /max_len = 50/],
  ['positional learned without max_len', 'model M {\n  input text: tokens(vocab = 9)\n  output y\n  embedding dim = 4\n  positional learned\n  linear 3\n}\n', 'E0514', /needs a max_len/, /max_len = N/],
  ['positional learned shorter than the input', 'model M {\n  input text: tokens(vocab = 9, max_len = 10)\n  output y\n  embedding dim = 4\n  positional learned, max_len = 6\n  linear 3\n}\n', 'E0514', /has 6 positions, but the input has max_len = 10/, /max_len = 10/],
  ['dot between sizes that differ', s2s('    embedding dim = 4\n    gru hidden = 6', '    embedding dim = 4\n    gru hidden = 5\n    attention score = dot\n    linear 8', ' init = zeros'), 'E0501', /sizes must match/, /score = general/],
];

describe('seq2seq, attention and position errors', () => {
  it.each(cases)('%s: %s', (_what, text, code, message, suggestion) => {
    const r = compile(text, 'm.nn', 'ts');
    expect(r.output).toBeUndefined();
    const errors = r.diagnostics.filter((d) => d.severity === 'error');
    expect(errors.map((d) => d.code)).toEqual([code]);
    expect(errors[0].message).toMatch(message);
    expect(errors[0].suggestion ?? '').toMatch(suggestion);
    expect(errors[0].span.line).toBeGreaterThan(1);
  });
});
