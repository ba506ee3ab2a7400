/**
 * The layer registry: statement kind → schema + lowering. The grammar knows no layer names; the
 * checker (through schemas.ts) and the lowering both look kinds up here, so a new layer is one
 * entry (and one file).
 */
import type { LayerDef } from './layer.ts';
import { gruLayer, lstmLayer, rnnLayer } from './recurrent.ts';
import * as dense from './dense.ts';
import { embeddingLayer, flattenLayer, poolLayer, positionalLayer } from './sequence.ts';
import * as blocks from './blocks.ts';
import { attentionLayer } from './attention.ts';
import { ngramSchema } from './ngram.schema.ts';
import { unsupported } from './unsupported.ts';

export const LAYERS: ReadonlyMap<string, LayerDef> = new Map(
  [
    embeddingLayer, positionalLayer, rnnLayer, gruLayer, lstmLayer,
    dense.linearLayer, dense.tanhLayer, dense.sigmoidLayer, dense.reluLayer, dense.geluLayer,
    dense.softmaxLayer, dense.logSoftmaxLayer, dense.layernormLayer, dense.dropoutLayer,
    poolLayer, flattenLayer, attentionLayer,
    blocks.encoderLayer, blocks.decoderLayer, blocks.repeatLayer, blocks.residualLayer, blocks.decodeLayer,
    // an n-gram model is counted, not lowered to IR: the driver routes it to src/ngram and src/runtime/ngram (never here)
    { schema: ngramSchema, lower: unsupported },
  ].map((l) => [l.schema.kind, l]),
);
