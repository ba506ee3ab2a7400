/**
 * Every statement kind's schema, by kind — read off the layer registry (registry.ts), where each
 * kind is one entry (schema and lowering together) — and the input forms' schemas.
 */
import type { KindSchema } from './schema.ts';
import { LAYERS } from './registry.ts';
import * as blocks from './blocks.schema.ts';

export const STATEMENT_SCHEMAS: ReadonlyMap<string, KindSchema> = new Map([...LAYERS].map(([kind, layer]) => [kind, layer.schema]));

/** `input NAME: tokens(...)` / `vectors(...)`. */
export const INPUT_SCHEMAS: ReadonlyMap<string, KindSchema> = new Map(
  [blocks.inputTokensSchema, blocks.inputVectorsSchema].map((s) => [s.kind, s]),
);
