/**
 * Upper bounds on sizes (docs/language.md, "Limits"). No real sequence model comes near them; they
 * exist so that a typo (`hidden = 99999999999`) is a located error instead of a module whose loops
 * never finish, and so that every size, element count and parameter count stays an exact integer.
 *
 * A single size (hidden, dim, vocab, out, max_len, top_k) is at most MAX_SIZE; a product of sizes can
 * still be large, so every weight tensor is also checked when it is declared (src/ir/build.ts): at most
 * MAX_WEIGHT_ELEMENTS elements (what one Float32Array and 32-bit kernel indexing can hold), and a model
 * at most MAX_PARAMETERS parameters in all (far below 2^53, so counts are exact).
 */

/** 2^20: the largest hidden, dim, vocab, out, max_len, top_k. */
export const MAX_SIZE = 1_048_576;
/** The largest number of attention heads. */
export const MAX_HEADS = 1024;
/** The most layers of a `deep` attention score (as `layers` of a recurrent layer). */
export const MAX_DEPTH = 64;
/** 2^31 − 1: the most elements of one weight tensor. */
export const MAX_WEIGHT_ELEMENTS = 2 ** 31 - 1;
/** 2^40: the most parameters of one model (4 TiB of float32). */
export const MAX_PARAMETERS = 2 ** 40;
/** The largest number a spec may put into a kernel (layernorm's eps): kernels compute in float32, whose largest finite value is about 3.4e38. */
export const MAX_EPS = 1e38;
