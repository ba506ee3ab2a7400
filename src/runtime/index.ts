/**
 * `nnc/runtime`: what generated modules import — the model object (plan interpreter, generate and
 * stream), the executors (wasm and cpu: host.ts; webasm, gpu, webgpu: gpujs.ts), backend choice,
 * weight loading and input checks — and serve(), for the script of a worker that runs models
 * (createModel({ worker })).
 */
export type * from './types.ts';
export { NncError } from './errors.ts';
export { CpuExecutor, WasmExecutor, tsGemm, tanhf, sigmoidf } from './host.ts';
export { GpuJsExecutor } from './gpujs.ts';
export { createExecutor } from './backends.ts';
export { serve, type ServedModule, type ServeOptions } from './worker.ts';
export { weightMap, compareWeights, readWeightStream, isWeightStream, type LoadOptions, type WeightSource, type WeightStream, type WeightReport } from './weights.ts';
export { readSafetensors, decodeTensor, type SafetensorsFile, type SafetensorsEntry } from './safetensors.ts';
export { stockStacks, resolveNames, type Stack, type Resolution } from './weight-names.ts';
export { prepareInput, checkInputNames, type PreparedInput } from './inputs.ts';
export * from './model.js';
export type * from './plan.ts';
export type { GenerateOptions, GenerateResult, StepEvent } from './decode.ts';
export { withText, textToTensor, textMethods, type TextModel, type TextInput, type TextGenerateResult, type TextStepEvent, type TextMethods } from './text/model.ts';
export { TextVocab, type VocabData, type SpecialIds } from './text/vocab.ts';
export { createNgramModel, NgramSession, type NgramModel, type NgramSpec, type Corpus, type NgramFitOptions } from './ngram/model.ts';
export { NgramLM, type NgramVocab, type Perplexity, type FitReport } from './ngram/lm.ts';
export type { FusionLM } from './decode.ts';
