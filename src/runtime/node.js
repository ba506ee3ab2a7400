// `nnc/runtime` for Node (package.json exports, "node" condition). Under a TypeScript loader (tsx) it
// is the source, src/runtime/index.ts; in plain Node, which cannot load TypeScript from a package,
// it is the same source compiled to dist/runtime/ (`npm run build`, run by `prepare` and by
// `nnc compile --format js`). test/strict.test.ts checks that both export the same names.
let m;
try {
  m = await import('./index.ts');
} catch (e) {
  const code = String(e && e.code);
  if (!/^ERR_(UNKNOWN_FILE_EXTENSION|UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING|UNSUPPORTED_TYPESCRIPT_SYNTAX|INVALID_TYPESCRIPT_SYNTAX)$/.test(code)) throw e;
  try {
    m = await import('../../dist/runtime/index.js');
  } catch (e2) {
    if (String(e2 && e2.code) !== 'ERR_MODULE_NOT_FOUND') throw e2;
    throw new Error("nnc's runtime has not been compiled to JavaScript for plain Node: run 'npm run build' in the nnc package (or 'nnc compile --format js', which builds it)");
  }
}
export const {
  NncError, CpuExecutor, WasmExecutor, tsGemm, tanhf, sigmoidf, GpuJsExecutor, createExecutor, weightMap, compareWeights, readWeightStream, isWeightStream, readSafetensors, decodeTensor, stockStacks, resolveNames, prepareInput, checkInputNames, createNncModel, serve,
  withText, textToTensor, textMethods, TextVocab, createNgramModel, NgramSession, NgramLM,
} = m;
