/**
 * The two renderers of the per-element body. Kernels are written once (codegen/expr.ts); only the
 * few functions whose best form differs are rendered per target: gpu.js's GLSL `tanh` overflows to
 * NaN for |x| > 44, so GPU bodies use an overflow-safe form. CPU bodies call the runtime's float32
 * tanh and sigmoid (a rational approximation, within 2 float32 ulps: src/runtime/host.ts), about
 * twice as fast as Math.tanh and Math.exp, whose double precision float32 results cannot use.
 */
export interface Dialect {
  readonly target: 'cpu' | 'gpu';
  /** Returns an expression; `bind` makes a temporary when an operand is used more than once. */
  tanh(x: string, bind: (e: string) => string): string;
  sigmoid(x: string): string;
}

export const CPU: Dialect = {
  target: 'cpu',
  tanh: (x) => `__nnc.tanhf(${x})`,
  sigmoid: (x) => `__nnc.sigmoidf(${x})`,
};

export const GPU: Dialect = {
  target: 'gpu',
  tanh: (x, bind) => {
    const e = bind(`Math.exp(2.0 * ${x})`);
    return `(1.0 - 2.0 / (${e} + 1.0))`;
  },
  sigmoid: (x) => `1.0 / (1.0 + Math.exp(-${x}))`,
};
