/**
 * ONNX's protobuf messages, written by protobufjs (its light build) from ONNX's own schema
 * (src/export/onnx.proto, as JSON in onnx-schema.ts: `tsx scripts/onnx-schema.ts`). The exporter
 * builds plain objects of the shapes below (field names as in onnx.proto) and encodes them here;
 * nothing is written by hand.
 */
import protobuf from 'protobufjs/light.js';
import { ONNX_SCHEMA } from './onnx-schema.ts';

/** TensorProto.DataType values the exporter uses. */
export const DT = { FLOAT: 1, INT32: 6, INT64: 7, BOOL: 9 } as const;
export type DataType = (typeof DT)[keyof typeof DT];

/** AttributeProto.AttributeType values. */
export const AT = { FLOAT: 1, INT: 2, STRING: 3, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;

export interface TensorProto {
  name: string;
  data_type: DataType;
  dims: number[];
  raw_data?: Uint8Array;
  doc_string?: string;
}

export interface AttributeProto {
  name: string;
  type: (typeof AT)[keyof typeof AT];
  f?: number;
  i?: number;
  s?: Uint8Array;
  g?: GraphProto;
  floats?: number[];
  ints?: number[];
  strings?: Uint8Array[];
}

export interface NodeProto {
  input: string[];
  output: string[];
  name: string;
  op_type: string;
  attribute: AttributeProto[];
  doc_string?: string;
}

/** A dimension: a number, or a named symbolic size. */
export type OnnxDim = number | string;

export interface ValueInfoProto {
  name: string;
  type: { tensor_type: { elem_type: DataType; shape: { dim: ({ dim_value: number } | { dim_param: string })[] } } };
  doc_string?: string;
}

export interface GraphProto {
  node: NodeProto[];
  name: string;
  initializer: TensorProto[];
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  doc_string?: string;
}

export interface ModelProto {
  ir_version: number;
  opset_import: { domain: string; version: number }[];
  producer_name: string;
  producer_version: string;
  doc_string?: string;
  graph: GraphProto;
  metadata_props: { key: string; value: string }[];
}

let modelType: protobuf.Type | undefined;

/** The binary ModelProto. */
export function encodeModel(m: ModelProto): Uint8Array {
  modelType ??= protobuf.Root.fromJSON(ONNX_SCHEMA as unknown as protobuf.INamespace).lookupType('onnx.ModelProto');
  const problem = modelType.verify(m);
  if (problem) {
    const bad = m.graph.node.find((n) => n.input.some((i) => typeof i !== 'string'));
    throw new Error(`internal: ONNX model does not fit the schema: ${problem}${bad ? ` (${bad.op_type} ${bad.name}: ${bad.input.join(', ')})` : ''}`);
  }
  return modelType.encode(modelType.fromObject(m)).finish();
}

/** A ModelProto read back (tests and tools): plain objects with onnx.proto's field names. */
export function decodeModel(bytes: Uint8Array): ModelProto {
  modelType ??= protobuf.Root.fromJSON(ONNX_SCHEMA as unknown as protobuf.INamespace).lookupType('onnx.ModelProto');
  return modelType.toObject(modelType.decode(bytes), { longs: Number, bytes: Array, defaults: false }) as unknown as ModelProto;
}

export function valueInfo(name: string, elem: DataType, shape: readonly OnnxDim[], doc?: string): ValueInfoProto {
  return {
    name,
    type: { tensor_type: { elem_type: elem, shape: { dim: shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } },
    ...(doc ? { doc_string: doc } : {}),
  };
}
