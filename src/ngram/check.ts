/**
 * The checks of an n-gram model's spec (docs/ngram.md): the `ngram` statement is the model's only
 * layer, it reads one tokens input, has sentence boundary tokens, and its attributes fit its
 * smoothing method. Reports E0606 (structure) and E0607 (attributes).
 */
import type { DiagnosticBag } from '../diagnostics/diagnostic.ts';
import type { ModelDecl } from '../syntax/ast.ts';
import type { ResolvedInput, ResolvedStatement } from '../syntax/resolved.ts';
import type { Smoothing } from '../runtime/ngram/smooth.ts';

/** Which smoothing methods each optional attribute applies to. */
const APPLIES: Readonly<Record<string, readonly Smoothing[]>> = {
  alpha: ['additive', 'stupid_backoff'],
  lambdas: ['interpolated'],
  k: ['katz'],
  discount: ['kneser_ney'],
  unigram: ['interpolated', 'katz', 'kneser_ney', 'witten_bell', 'stupid_backoff'],
};

/** `"0.6 0.3 0.1"` (spaces or commas) → numbers; undefined when a part is not a number. */
export function parseLambdas(s: string): number[] | undefined {
  const parts = s.trim().split(/[\s,]+/).filter(Boolean);
  const xs = parts.map(Number);
  return parts.length > 0 && xs.every((x) => Number.isFinite(x)) ? xs : undefined;
}

/** How many interpolation weights an order-n interpolated model takes. */
export function lambdaCount(order: number, unigram: 'smoothed' | 'ml'): number {
  return unigram === 'ml' ? order : order + 1;
}

export function checkNgram(
  m: ModelDecl, ngram: ResolvedStatement, chain: readonly ResolvedStatement[], inputs: readonly ResolvedInput[],
  decode: ResolvedStatement | undefined, diags: DiagnosticBag,
): void {
  const what = m.name ? `model '${m.name}'` : 'this model';
  for (const other of chain) {
    if (other === ngram) continue;
    diags.error('E0606', `${what} is an n-gram model: 'ngram' counts tokens and takes no other layers, but here is '${other.kind}'`, other.stmt.kindSpan, {
      suggestion: `remove '${other.kind}', or put the ngram model in a model of its own`,
    });
  }
  const input = inputs[0];
  if (input && input.form !== 'tokens') {
    diags.error('E0606', `an ngram model reads token ids, but input '${input.name}' is ${input.form}`, input.decl.formSpan, {
      suggestion: `write input ${input.name}: tokens(vocab = "vocab.json")`,
    });
  }
  const a = ngram.attrs;
  const smoothing = a['smoothing'] as Smoothing;
  const item = (name: string) => ngram.stmt.items.find((it) => it.name === name);
  for (const [name, methods] of Object.entries(APPLIES)) {
    if (a[name] === undefined || methods.includes(smoothing)) continue;
    diags.error('E0607', `${name} applies to smoothing = ${methods.join(' | ')}, not ${smoothing}`, item(name)?.span ?? ngram.stmt.kindSpan, {
      suggestion: `remove ${name}`,
    });
  }
  if (smoothing === 'stupid_backoff' && a['unigram'] === 'smoothed') {
    diags.error('E0607', "stupid_backoff's lowest order is the relative frequency (unigram = ml): it has no smoothed unigram", item('unigram')!.value.span, { suggestion: 'remove unigram' });
  }
  if (smoothing === 'interpolated' && typeof a['lambdas'] === 'string') {
    const order = a['order'] as number;
    const unigram = (a['unigram'] as 'smoothed' | 'ml' | undefined) ?? 'smoothed';
    const at = item('lambdas')!.value.span;
    const xs = parseLambdas(a['lambdas']);
    const want = lambdaCount(order, unigram);
    const shape = unigram === 'ml' ? `one per order, ${order} down to 1` : `one per order, ${order} down to 1, then one for the uniform distribution`;
    if (!xs) diags.error('E0607', `lambdas must be numbers separated by spaces; got ${JSON.stringify(a['lambdas'])}`, at, { suggestion: `write e.g. lambdas = "${exampleLambdas(want)}"` });
    else if (xs.length !== want) diags.error('E0607', `an order-${order} interpolated model takes ${want} lambdas (${shape}); got ${xs.length}`, at, { suggestion: `write e.g. lambdas = "${exampleLambdas(want)}"` });
    else if (xs.some((x) => x < 0 || x > 1) || Math.abs(xs.reduce((s, x) => s + x, 0) - 1) > 1e-6) {
      diags.error('E0607', `lambdas must be weights in [0, 1] that sum to 1; these sum to ${xs.reduce((s, x) => s + x, 0)}`, at, { suggestion: `write e.g. lambdas = "${exampleLambdas(want)}"` });
    }
  }
  // sentence boundaries: <s> starts every sentence's context, </s> is predicted at its end
  const specials = input?.text?.specials ?? {};
  const missing = (['bos', 'eos'] as const).filter((r) => specials[r] === undefined && !decode?.written.has(r));
  if (input && input.form === 'tokens' && missing.length > 0) {
    diags.error('E0606', `an ngram model needs sentence boundary tokens; input '${input.name}' declares no ${missing.join(' and ')}`, input.decl.formSpan, {
      suggestion: input.text ? `add ${missing.map((r) => `${r} = "${r === 'bos' ? '<s>' : '</s>'}"`).join(', ')} to the input (tokens of its vocabulary)` : `add decode ${missing.map((r) => `${r} = ${r === 'bos' ? 1 : 2}`).join(', ')} (ids), or declare a vocabulary file with them`,
    });
  }
}

function exampleLambdas(n: number): string {
  const xs = Array.from({ length: n }, (_, i) => (i === n - 1 ? 0 : Math.round((0.5 ** (i + 1)) * 100) / 100));
  xs[n - 1] = Math.round((1 - xs.slice(0, -1).reduce((s, x) => s + x, 0)) * 100) / 100;
  return xs.join(' ');
}
