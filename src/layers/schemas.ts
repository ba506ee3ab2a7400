/** Every statement kind's schema, by kind. The registry (registry.ts) adds lowering to these. */
import type { KindSchema } from './schema.ts';
import { rnnSchema, gruSchema, lstmSchema } from './recurrent.schema.ts';
import * as dense from './dense.schema.ts';
import { embeddingSchema, positionalSchema, poolSchema, flattenSchema } from './sequence.schema.ts';
import { attentionSchema } from './attention.schema.ts';
import * as blocks from './blocks.schema.ts';
import { ngramSchema } from './ngram.schema.ts';

export const STATEMENT_SCHEMAS: ReadonlyMap<string, KindSchema> = new Map(
  [
    embeddingSchema, positionalSchema, rnnSchema, gruSchema, lstmSchema,
    dense.linearSchema, dense.tanhSchema, dense.sigmoidSchema, dense.reluSchema, dense.geluSchema,
    dense.softmaxSchema, dense.logSoftmaxSchema, dense.layernormSchema, dense.dropoutSchema,
    poolSchema, flattenSchema, attentionSchema,
    blocks.encoderSchema, blocks.decoderSchema, blocks.repeatSchema, blocks.residualSchema, blocks.decodeSchema, ngramSchema,
  ].map((s) => [s.kind, s]),
);

/** `input NAME: tokens(...)` / `vectors(...)`. */
export const INPUT_SCHEMAS: ReadonlyMap<string, KindSchema> = new Map(
  [blocks.inputTokensSchema, blocks.inputVectorsSchema].map((s) => [s.kind, s]),
);
