/**
 * The two renderers of the per-element body. Kernels are written once (codegen/expr.ts); only the
 * few functions whose best form differs are rendered per target: gpu.js's GLSL `tanh` overflows to
 * NaN for |x| > 44, so GPU bodies use an overflow-safe form, while the CPU keeps Math.tanh.
 */
export interface Dialect {
  readonly target: 'cpu' | 'gpu';
  /** Returns an expression; `bind` makes a temporary when an operand is used more than once. */
  tanh(x: string, bind: (e: string) => string): string;
}

export const CPU: Dialect = {
  target: 'cpu',
  tanh: (x) => `Math.tanh(${x})`,
};

export const GPU: Dialect = {
  target: 'gpu',
  tanh: (x, bind) => {
    const e = bind(`Math.exp(2.0 * ${x})`);
    return `(1.0 - 2.0 / (${e} + 1.0))`;
  },
};
