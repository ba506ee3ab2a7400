import { bool, float, int, intOrString, oneOf, str, type AttrSpec, type KindSchema } from './schema.ts';
import { decodeStatementAttributes } from '../runtime/options.ts';
import { MAX_SIZE } from './limits.schema.ts';

export const encoderSchema: KindSchema = {
  kind: 'encoder', family: 'seq2seq', shape: 'block', topLevelOnly: true, doc: 'seq2seq encoder over the first input', attrs: [],
};
export const decoderSchema: KindSchema = {
  kind: 'decoder', family: 'seq2seq', shape: 'block', topLevelOnly: true, doc: 'seq2seq decoder over the second input',
  attrs: [{ name: 'init', type: oneOf('final', 'zeros', 'bridge'), default: 'final', doc: 'initial recurrent state' }],
};
export const repeatSchema: KindSchema = {
  kind: 'repeat', family: 'block', shape: 'block', doc: 'N copies of the body in sequence, each with its own weights',
  attrs: [{ name: 'count', type: int(1, 1024), required: true, positional: true, doc: 'copies' }],
};
export const residualSchema: KindSchema = {
  kind: 'residual', family: 'block', shape: 'block', doc: 'x + body(x)', attrs: [],
};
/** The decode statement's attributes are generate()'s options, declared once in src/runtime/options.ts. */
export const decodeSchema: KindSchema = {
  kind: 'decode', family: 'decoding', shape: 'directive', topLevelOnly: true, doc: 'how generate() decodes',
  attrs: decodeStatementAttributes().map((a): AttrSpec => ({
    name: a.name,
    type: a.type.kind === 'int' ? (a.token ? intOrString(a.type.min, a.type.max, 'a token of the generated vocabulary') : int(a.type.min, a.type.max)) : a.type.kind === 'float' ? float(a.type.minExclusive, undefined, true) : a.type.kind === 'enum' ? oneOf(...a.type.values) : bool,
    ...(a.default !== undefined ? { default: a.default } : {}),
    doc: a.doc,
  })),
};
export const inputTokensSchema: KindSchema = {
  kind: 'tokens', family: 'input', shape: 'directive', doc: 'integer token ids, [B, T]',
  attrs: [
    { name: 'vocab', type: intOrString(1, MAX_SIZE, 'a vocabulary file'), required: true, doc: 'ids are in [0, vocab); or a vocabulary file (docs/text.md), whose size it is' },
    { name: 'max_len', type: int(1, MAX_SIZE), doc: 'longest sequence (fixed window for flatten)' },
    { name: 'level', type: oneOf('char', 'word'), doc: "how text splits into tokens (default: the vocabulary file's)" },
    { name: 'lower', type: bool, doc: "lower-case text before lookup (default: the vocabulary file's, else false)" },
    { name: 'trim', type: bool, doc: "strip text and collapse its whitespace runs to one space (default: the vocabulary file's, else false)" },
    { name: 'pad', type: str('a token of the vocabulary'), doc: 'padding token' },
    { name: 'unk', type: str('a token of the vocabulary'), doc: 'what unknown characters or words become (without one they are an error)' },
    { name: 'bos', type: str('a token of the vocabulary'), doc: 'start-of-sequence token' },
    { name: 'eos', type: str('a token of the vocabulary'), doc: 'end-of-sequence token' },
  ],
};
export const inputVectorsSchema: KindSchema = {
  kind: 'vectors', family: 'input', shape: 'directive', doc: 'float features, [B, T, dim]',
  attrs: [
    { name: 'dim', type: int(1, MAX_SIZE), required: true, doc: 'features per step' },
    { name: 'max_len', type: int(1, MAX_SIZE), doc: 'longest sequence' },
  ],
};
