/**
 * `nnc/runtime`: what generated modules import — the model object (plan interpreter, generate and
 * stream), the executors (cpu, and gpu.js: webasm, gpu, webgpu), weight loading and input checks.
 */
export * from './runtime.js';
export * from './model.js';
export type * from './plan.ts';
export type { GenerateOptions, GenerateResult, StepEvent } from './decode.ts';
