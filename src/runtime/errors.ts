/** The runtime's user-facing error, and how values are shown in its messages. */

export class NncError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NncError';
  }
}

/**
 * A buffer the backend cannot allocate: `floats` values when `inUse` bytes are taken of `limit`
 * (undefined where the host does not say). The plan interpreter turns it into an NncError naming
 * the tensor (model.ts).
 */
export class OutOfMemory extends NncError {
  readonly backend: string;
  readonly floats: number;
  readonly inUse: number;
  readonly limit: number | undefined;
  constructor(backend: string, floats: number, inUse: number, limit: number | undefined) {
    super(`backend '${backend}' cannot allocate ${floats} floats (${bytes(floats * 4)})${limit !== undefined ? `: ${bytes(inUse)} of its ${bytes(limit)} limit are in use` : ''}`);
    this.name = 'NncError';
    this.backend = backend;
    this.floats = floats;
    this.inUse = inUse;
    this.limit = limit;
  }
}

/** A byte count for messages: '1.0 GiB', '24.4 MiB', '512 bytes'. */
export function bytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} bytes`;
}

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
