/** The runtime's user-facing error, and how values are shown in its messages. */

export class NncError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NncError';
  }
}

/**
 * A buffer the backend cannot allocate (its message says how big, and the limit): the plan
 * interpreter adds the tensor it was computing (model.ts).
 */
export class OutOfMemory extends NncError {}

/** The built-in type of a value as it appears in error messages: 'Float32Array', 'Array', 'string', 'null'. */
export function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v !== 'object' && typeof v !== 'function') return typeof v;
  return Object.prototype.toString.call(v).slice(8, -1);
}

/** A value as it appears in error messages: strings quoted, so '5' and 5 read differently. */
export function showValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  return String(v);
}
