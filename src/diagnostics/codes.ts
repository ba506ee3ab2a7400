/**
 * Stable diagnostic codes: one per kind of message. Codes are never reused or renumbered; the
 * wording of a message may improve, its code stays. docs/diagnostics.md lists them.
 *
 *   E00xx  lexer          E01xx  syntax          E02xx  unknown names
 *   E03xx  attribute values                      E04xx  model structure
 *   E05xx  shapes and chain semantics (found while lowering layers to IR)
 *   E06xx  vocabularies and n-gram models
 *   E09xx  internal
 */
export const CODES = {
  // lexer
  E0001: 'unexpected character(s) that cannot start any token',
  E0002: "unterminated string (no closing quote on the same line) or a single-quoted string",
  E0003: "unterminated block comment: '/*' without '*/'",
  E0004: 'malformed number (letters or extra dots glued to a number)',
  E0005: 'too many errors in one file; the rest are not reported',
  E0006: 'name with a character outside A-Z, a-z, 0-9 and _ (e.g. a non-ASCII letter)',
  E0007: 'source file larger than 1 MiB',
  // syntax
  E0101: "something other than 'model' at the top level of a file",
  E0102: "unclosed '{' or '(': expected the closing bracket",
  E0103: 'expected a name (model, input, output, input form, layer kind after a label)',
  E0104: "expected a punctuation token (':' after an input name, '{' after a model name)",
  E0105: "expected a value after 'name =' or an attribute after ','",
  E0106: "expected ',' between two items",
  E0107: 'unexpected token in a model or block body',
  E0108: 'other syntax error',
  E0109: "expected '=' between an attribute name and its value",
  E0110: 'blocks nested too deeply',
  // unknown names
  E0201: 'unknown layer or block kind',
  E0202: 'unknown attribute for this kind',
  E0203: 'value not among the allowed words of an attribute',
  E0204: 'unknown input form (tokens or vectors)',
  E0205: 'bare item that is neither the positional value nor a flag',
  // attribute values
  E0301: 'value of the wrong type for its attribute',
  E0302: 'number that must be an integer',
  E0303: 'number outside the allowed range',
  E0304: 'attribute given twice',
  E0305: 'required attribute missing',
  E0306: 'flag value other than true or false',
  // structure
  E0401: 'block kind without a { ... } body',
  E0402: 'layer with a { ... } body it cannot take',
  E0403: 'encoder, decoder or decode inside a block',
  E0404: 'encoder, decoder or decode given twice in a model',
  E0405: 'encoder without decoder, decoder without encoder, or decoder before encoder',
  E0406: 'wrong number of inputs for the model',
  E0407: 'output declared twice',
  E0408: 'input or output inside a block',
  E0409: 'two statements with the same name in one scope',
  E0410: 'two models with the same name',
  E0411: 'file without any model',
  E0412: 'model or block with no layers',
  E0413: 'decode with more than one strategy (greedy, beam, sample), or with an attribute of another strategy (temperature or top_k without sample)',
  E0414: 'two inputs with the same name',
  E0415: 'model with too many layers (nested repeat counts multiply)',
  E0416: "input or output named '__proto__' (not an ordinary property name in JavaScript)",
  E0417: 'file with more than 1,000 models',
  // shapes and chain semantics (src/layers, src/ir/build.ts)
  E0501: 'size mismatch between a layer and its input',
  E0502: 'a layer that needs feature vectors gets token ids (missing embedding)',
  E0503: 'a layer that needs a sequence gets one vector per row (after pool or flatten)',
  E0504: 'embedding on feature vectors instead of token ids',
  E0505: 'flatten without a fixed number of steps (no max_len on the input)',
  E0506: 'residual body changes the shape of its input',
  E0507: 'decoder init = final | bridge that cannot be built (sizes, or no recurrent layer in the encoder)',
  E0508: "the encoder's output (its memory) is not a sequence of feature vectors",
  E0509: 'attention without self outside a decoder',
  E0510: 'heads with a score or size it cannot take',
  E0511: 'bidirectional recurrent layer in a decoder',
  E0512: 'score = location without a max_len on the source input',
  E0513: 'decode on a model that cannot generate (no per-step token distribution, a layer that reads ahead, or an output vocabulary larger than the input\'s)',
  E0514: 'positional learned without a max_len, or with fewer positions than the input',
  E0515: 'a weight tensor with more elements than the limit (2^31 - 1)',
  E0516: 'a model with more parameters than the limit (2^40)',
  W0517: 'merge = sum | mean on a recurrent layer that is not bidirectional (it has no effect)',
  E0518: "decode bos or eos outside the model's vocabularies (bos: the fed input's; eos: the output's)",
  W0598: 'retired (0.1: decode was accepted without generate()); never reused',
  E0599: 'part of the language this version of nnc cannot compile yet',
  // vocabularies and n-gram models (src/text, src/ngram; their runtime parts in src/runtime/text, src/runtime/ngram)
  E0601: 'a vocabulary file that cannot be read (missing, unreadable)',
  E0602: 'a malformed vocabulary file (not JSON, wrong shape, duplicate ids, not a tokenizer)',
  E0603: 'a special token (pad, unk, bos, eos) that is not in the vocabulary',
  E0604: "vocabulary settings that do not fit (level differs from the file's, or on vocab = N without a file)",
  E0605: 'decode bos or eos names a token the generated vocabulary lacks (or there is no vocabulary)',
  E0606: 'an ngram model with other layers, a non-token input, or no sentence boundary tokens',
  E0607: "ngram attributes that do not fit its smoothing (or lambdas of the wrong count or sum)",
  // internal
  E0900: 'internal error in the front end (a bug: please report it)',
} as const;

export type Code = keyof typeof CODES;

/** The table as rows, in code order (docs, --explain). */
export function codeTable(): { code: Code; description: string }[] {
  return (Object.keys(CODES) as Code[]).sort().map((code) => ({ code, description: CODES[code] }));
}
