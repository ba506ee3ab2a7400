/**
 * nnc's programmatic API: the same pipeline as the CLI (see driver.ts), for build tools and tests.
 *
 *   import { compile } from 'nnc';
 *   const { output, diagnostics } = compile(text, 'model.nn');   // output: the TypeScript module
 */
export { compile, lower, optimize, InternalError, STAGES, type CompileResult, type OptLevel, type Stage } from './driver.ts';
export type { Diagnostic, Severity } from './diagnostics/diagnostic.ts';
export type { Span } from './diagnostics/span.ts';
export { renderDiagnostic, renderDiagnostics } from './diagnostics/render.ts';
export { CODES } from './diagnostics/codes.ts';
export type { ModelIR, ModelInput } from './ir/model.ts';
// `nnc onnx` as a library, and what backend 'onnxruntime' imports (src/runtime/ort.ts)
export { exportOnnx, OPSET, type OnnxExport, type OnnxIO, type ExportOptions } from './export/onnx.ts';
export { modelFromSpec, onnxFromModel } from './export/onnx-spec.ts';
