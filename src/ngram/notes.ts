/**
 * nnc torch, nnc onnx, nnc weights and nnc graph are about neural models: a file's n-gram models are named on
 * stderr and left out. False when the file has no other model (the command then exits 2).
 */
export function neuralOnly(command: 'torch' | 'onnx' | 'weights' | 'graph', ngrams: readonly { decl: { name: string } }[] | undefined, neural: number): boolean {
  if (!ngrams?.length) return true;
  const names = ngrams.map((n) => `'${n.decl.name}'`).join(', ');
  const which = ngrams.length > 1 ? `models ${names} are n-gram models` : `model ${names} is an n-gram model`;
  const lacks = { torch: 'no PyTorch module', onnx: 'no ONNX graph', weights: 'no weight tensors', graph: 'no layers to draw' }[command];
  process.stderr.write(`nnc ${command}: ${which} (an 'ngram' statement), with ${lacks}: what an n-gram model learns is an ARPA file (nnc train --out, loadWeights; docs/ngram.md)${neural > 0 ? '; left out' : ''}\n`);
  return neural > 0;
}
