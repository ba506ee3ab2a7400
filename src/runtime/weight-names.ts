/**
 * Which tensor of a checkpoint is which weight of the model. nnc's own names come first; where they do
 * not all match, two mappings derived from the manifest alone (names, layer kinds, shapes — no compiler
 * needed, so a generated module does this at load time) are tried:
 *
 * * a common prefix: every weight found as `p + name` (`module.` from DistributedDataParallel, `model.`
 *   from a wrapper) — p is read off the checkpoint's names;
 * * PyTorch's stock Transformer layout: a run of blocks shaped like nn.TransformerEncoderLayer or
 *   nn.TransformerDecoderLayer (post-norm: `residual { attention }`, `layernorm`, …; pre-norm:
 *   `residual { layernorm; attention }`, …) is a stack named `layers.N.self_attn.in_proj_weight`,
 *   `layers.N.norm1.weight`, `layers.N.linear1.weight`, … as nn.TransformerEncoder / nn.TransformerDecoder
 *   name it, a layernorm right after the stack is its final `norm`, and a stack of one layer may also be a
 *   lone layer (`self_attn.…`); the stack's prefix in the checkpoint (`enc.`, `encoder.`) is read off the
 *   checkpoint's names.
 *
 * The mapping is used only when it accounts for every weight and every tensor (weights.ts); otherwise it
 * is reported, with likely renames for what is left (same shape, similar name).
 */
import type { WeightInfo } from './types.ts';

/** Parameter names of the layers a stock Transformer layer is made of. */
const PARAMS: Readonly<Record<string, readonly string[]>> = {
  attention: ['in_proj_weight', 'in_proj_bias', 'out_proj.weight', 'out_proj.bias'],
  linear: ['weight', 'bias'],
  layernorm: ['weight', 'bias'],
};

interface LayerNode {
  readonly type: 'layer';
  readonly id: string;
  /** attention | linear | layernorm when its parameters are exactly those of the stock layer, else 'other' */
  kind: string;
  readonly params: Map<string, WeightInfo>;
}
interface ScopeNode {
  readonly type: 'scope';
  readonly seg: string;
  readonly path: string;
  readonly items: TreeNode[];
}
type TreeNode = LayerNode | ScopeNode;

/** One stock layer pattern: the flattened items of the layer (a block's layers in a list), and their PyTorch names. */
interface Pattern {
  readonly kind: 'encoder' | 'decoder';
  readonly normFirst: boolean;
  readonly items: readonly (string | readonly string[])[];
  readonly names: readonly string[];
}
const PATTERNS: readonly Pattern[] = [
  {
    kind: 'decoder', normFirst: false,
    items: [['attention'], 'layernorm', ['attention'], 'layernorm', ['linear', 'linear'], 'layernorm'],
    names: ['self_attn', 'norm1', 'multihead_attn', 'norm2', 'linear1', 'linear2', 'norm3'],
  },
  { kind: 'encoder', normFirst: false, items: [['attention'], 'layernorm', ['linear', 'linear'], 'layernorm'], names: ['self_attn', 'norm1', 'linear1', 'linear2', 'norm2'] },
  {
    kind: 'decoder', normFirst: true,
    items: [['layernorm', 'attention'], ['layernorm', 'attention'], ['layernorm', 'linear', 'linear']],
    names: ['norm1', 'self_attn', 'norm2', 'multihead_attn', 'norm3', 'linear1', 'linear2'],
  },
  { kind: 'encoder', normFirst: true, items: [['layernorm', 'attention'], ['layernorm', 'linear', 'linear']], names: ['norm1', 'self_attn', 'norm2', 'linear1', 'linear2'] },
];

/** A run of stock-shaped Transformer layers in one scope of the model. */
export interface Stack {
  readonly kind: 'encoder' | 'decoder';
  readonly normFirst: boolean;
  readonly layers: number;
  /** The nnc scope holding it ('' at the top, 'encoder.', …): nn.Transformer names its stacks the same way. */
  readonly scope: string;
  /** Manifest name → name inside nn.TransformerEncoder / nn.TransformerDecoder (`layers.0.self_attn.in_proj_weight`). */
  readonly names: ReadonlyMap<string, string>;
  /** Manifest names of the final layernorm (`norm.weight`, `norm.bias` in `names`), if the stack has one. */
  readonly norm: readonly string[];
  /** A one-layer stack as a lone nn.Transformer*Layer: manifest name → `self_attn.in_proj_weight`, … */
  readonly lone: ReadonlyMap<string, string> | undefined;
  /** First and last layer ids (`repeat0.0.residual0.attention0`), for messages. */
  readonly from: string;
  readonly to: string;
}

/** Parses the manifest into a tree of scopes and layers (in spec order). */
function tree(manifest: readonly WeightInfo[]): ScopeNode {
  const root: ScopeNode = { type: 'scope', seg: '', path: '', items: [] };
  let last: LayerNode | undefined;
  for (const w of manifest) {
    const param = PARAMS[w.layer]?.find((p) => w.name.endsWith(`.${p}`));
    const id = param ? w.name.slice(0, -param.length - 1) : w.name;
    if (last && last.id === id && param) {
      last.params.set(param, w);
      continue;
    }
    const segs = id.split('.');
    let scope = root;
    for (const seg of segs.slice(0, -1)) {
      const tail = scope.items[scope.items.length - 1];
      if (tail?.type === 'scope' && tail.seg === seg) scope = tail;
      else {
        const s: ScopeNode = { type: 'scope', seg, path: `${scope.path}${seg}.`, items: [] };
        scope.items.push(s);
        scope = s;
      }
    }
    last = { type: 'layer', id, kind: param ? w.layer : 'other', params: new Map(param ? [[param, w]] : []) };
    scope.items.push(last);
  }
  return root;
}

/** A scope's items with `repeat` copies (scopes whose children are all numbered) spliced in, in order. */
function flatten(scope: ScopeNode): TreeNode[] {
  const out: TreeNode[] = [];
  for (const x of scope.items) {
    if (x.type === 'scope' && x.items.length && x.items.every((c) => c.type === 'scope' && /^\d+$/.test(c.seg))) {
      for (const copy of x.items) out.push(...flatten(copy as ScopeNode));
    } else out.push(x);
  }
  return out;
}

const complete = (x: TreeNode | undefined, kind: string): x is LayerNode =>
  x?.type === 'layer' && x.kind === kind && x.params.size === PARAMS[kind]!.length;

/** The layers of one stock layer starting at items[i], with its D (model width), or undefined. */
function matchLayer(items: readonly TreeNode[], i: number, p: Pattern): LayerNode[] | undefined {
  const layers: LayerNode[] = [];
  for (let k = 0; k < p.items.length; k++) {
    const want = p.items[k]!;
    const x = items[i + k];
    if (typeof want === 'string') {
      if (!complete(x, want)) return undefined;
      layers.push(x);
    } else {
      if (x?.type !== 'scope') return undefined;
      const inner = flatten(x);
      if (inner.length !== want.length || !inner.every((y, j) => complete(y, want[j]!))) return undefined;
      layers.push(...(inner as LayerNode[]));
    }
  }
  return shapesFit(layers, p) ? layers : undefined;
}

const dims = (l: LayerNode, param: string) => l.params.get(param)!.shape;
const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** The shapes of nn.Transformer*Layer(d_model = D, dim_feedforward = F). */
function shapesFit(layers: readonly LayerNode[], p: Pattern): boolean {
  const D = dims(layers[p.names.indexOf('self_attn')]!, 'out_proj.weight')[0]!;
  const F = dims(layers[p.names.indexOf('linear1')]!, 'weight')[0]!;
  const want: Record<string, Record<string, number[]>> = {
    attention: { in_proj_weight: [3 * D, D], in_proj_bias: [3 * D], 'out_proj.weight': [D, D], 'out_proj.bias': [D] },
    layernorm: { weight: [D], bias: [D] },
    linear1: { weight: [F, D], bias: [F] },
    linear2: { weight: [D, F], bias: [D] },
  };
  return layers.every((l, i) => {
    const role = p.names[i]!;
    const shapes = want[role.startsWith('linear') ? role : l.kind]!;
    return Object.entries(shapes).every(([param, s]) => same(dims(l, param), s));
  });
}

/** Every run of stock-shaped Transformer layers in the model, with the stock names of their weights. */
export function stockStacks(manifest: readonly WeightInfo[]): Stack[] {
  const stacks: Stack[] = [];
  const visit = (scope: ScopeNode): void => {
    const items = flatten(scope);
    for (let i = 0; i < items.length;) {
      const found = PATTERNS.map((p) => [p, matchLayer(items, i, p)] as const).find(([, l]) => l);
      if (!found) {
        const x = items[i++]!;
        if (x.type === 'scope') visit(x);
        continue;
      }
      const [p] = found;
      const groups: LayerNode[][] = [];
      for (let g = matchLayer(items, i, p); g; g = matchLayer(items, i, p)) {
        groups.push(g);
        i += p.items.length;
      }
      const names = new Map<string, string>();
      const lone = new Map<string, string>();
      groups.forEach((layers, n) =>
        layers.forEach((l, j) => {
          for (const [param, w] of l.params) {
            names.set(w.name, `layers.${n}.${p.names[j]}.${param}`);
            lone.set(w.name, `${p.names[j]}.${param}`);
          }
        }));
      const D = dims(groups[0]![p.names.indexOf('self_attn')]!, 'out_proj.weight')[0]!;
      const next = items[i];
      const norm: string[] = [];
      if (complete(next, 'layernorm') && same(dims(next, 'weight'), [D])) {
        for (const [param, w] of next.params) {
          names.set(w.name, `norm.${param}`);
          norm.push(w.name);
        }
        i++;
      }
      const lastGroup = groups[groups.length - 1]!;
      stacks.push({
        kind: p.kind, normFirst: p.normFirst, layers: groups.length, scope: scope.path, names, norm,
        lone: groups.length === 1 ? lone : undefined, from: groups[0]![0]!.id, to: lastGroup[lastGroup.length - 1]!.id,
      });
    }
  };
  visit(tree(manifest));
  return stacks;
}

/** Manifest name → the weight's name in PyTorch's stock layout, under the stack's nnc scope (`encoder.layers.0.self_attn.in_proj_weight`, as nn.Transformer names it). */
export function stockNames(manifest: readonly WeightInfo[]): Map<string, string> {
  return new Map(stockStacks(manifest).flatMap((s) => [...s.names].map(([n, rel]): [string, string] => [n, s.scope + rel])));
}

/** The stack in words: "2 post-norm Transformer encoder layers (repeat0.0.residual0.attention0 … repeat0.1.layernorm1)". */
export function describeStack(s: Stack): string {
  return `${s.layers} ${s.normFirst ? 'pre' : 'post'}-norm Transformer ${s.kind} layer${s.layers > 1 ? 's' : ''} (${s.from} … ${s.to}${s.norm.length ? ', then a final layernorm' : ''})`;
}

/** How a stack was found in a checkpoint. */
export interface StackUse {
  readonly stack: Stack;
  /** The stack's prefix in the checkpoint ('' when it was saved alone). */
  readonly prefix: string;
  /** A lone nn.Transformer*Layer (no `layers.N.`). */
  readonly lone: boolean;
}

export interface Resolution {
  /** Manifest name → checkpoint name, and how it was found. */
  readonly source: ReadonlyMap<string, { readonly name: string; readonly how: 'name' | 'prefix' | 'stock' }>;
  /** The common prefix stripped from nnc-named weights ('' if none). */
  readonly prefix: string;
  readonly stacks: readonly StackUse[];
  readonly missing: readonly WeightInfo[];
  /** Checkpoint names no weight took, in checkpoint order. */
  readonly extra: readonly string[];
}

/** Every `p` (ending in '.') such that `p + s` is `name` for some s in `suffixes`, with that s. */
function* prefixesOf(name: string, suffixes: ReadonlySet<string>): Generator<string> {
  for (let i = name.indexOf('.'); i >= 0; i = name.indexOf('.', i + 1)) if (suffixes.has(name.slice(i + 1))) yield name.slice(0, i + 1);
}

/** Matches the manifest against a checkpoint's tensor names (see the file comment). */
export function resolveNames(manifest: readonly WeightInfo[], names: readonly string[], stacks: readonly Stack[] = stockStacks(manifest)): Resolution {
  const have = new Set(names);
  const used = new Set<string>();
  const source = new Map<string, { name: string; how: 'name' | 'prefix' | 'stock' }>();
  const take = (w: string, name: string, how: 'name' | 'prefix' | 'stock') => {
    source.set(w, { name, how });
    used.add(name);
  };
  // the common prefix that finds the most weights by their nnc names
  const want = new Set(manifest.map((w) => w.name));
  const counts = new Map<string, number>();
  for (const n of names) for (const p of prefixesOf(n, want)) counts.set(p, (counts.get(p) ?? 0) + 1);
  let prefix = '';
  let best = manifest.filter((w) => have.has(w.name)).length;
  for (const [p, c] of counts) if (c > best) [prefix, best] = [p, c];
  for (const w of manifest) {
    if (prefix && have.has(prefix + w.name)) take(w.name, prefix + w.name, 'prefix');
    else if (have.has(w.name)) take(w.name, w.name, 'name');
  }
  // stacks not found by nnc names: in the stock layout, under a prefix read off the checkpoint
  const uses: StackUse[] = [];
  for (const s of stacks) {
    const layerNames = [...s.names.keys()].filter((n) => !s.norm.includes(n));
    if (layerNames.some((n) => source.has(n))) continue;
    const forms: [boolean, ReadonlyMap<string, string>][] = [[false, s.names]];
    if (s.lone) forms.push([true, s.lone]);
    // q fits when the stack's tensors are all there under q, and nothing else is (a decoder layer's
    // self_attn, norm1, linear1 … must not pass for an encoder layer)
    const fits = (q: string, lone: boolean, map: ReadonlyMap<string, string>) => {
      const mine = new Set(layerNames.map((n) => q + map.get(n)!));
      const under = lone ? q : `${q}layers.`;
      return [...mine].every((x) => have.has(x) && !used.has(x)) && names.every((n) => !n.startsWith(under) || mine.has(n));
    };
    let found: [string, boolean, ReadonlyMap<string, string>] | undefined;
    for (const [lone, map] of forms) {
      const rels = new Set(layerNames.map((n) => map.get(n)!));
      const guesses = new Set([s.scope, prefix + s.scope]);
      for (const n of names) {
        if (rels.has(n)) guesses.add('');
        for (const q of prefixesOf(n, rels)) guesses.add(q);
      }
      const q = [...guesses].find((g) => fits(g, lone, map));
      if (q !== undefined) {
        found = [q, lone, map];
        break;
      }
    }
    if (!found) continue;
    const [q, lone, map] = found;
    for (const n of layerNames) take(n, q + map.get(n)!, 'stock');
    if (!lone && s.norm.length && s.norm.every((n) => !source.has(n) && have.has(q + s.names.get(n)!) && !used.has(q + s.names.get(n)!))) {
      for (const n of s.norm) take(n, q + s.names.get(n)!, 'stock');
    }
    uses.push({ stack: s, prefix: q, lone });
  }
  return {
    source,
    prefix: [...source.values()].some((x) => x.how === 'prefix') ? prefix : '',
    stacks: uses,
    missing: manifest.filter((w) => !source.has(w.name)),
    extra: names.filter((n) => !used.has(n)),
  };
}

/** Character-bigram similarity of two names (Dice), 0..1. */
function similarity(a: string, b: string): number {
  const grams = (s: string) => {
    const m = new Map<string, number>();
    for (let i = 0; i < s.length - 1; i++) m.set(s.slice(i, i + 2), (m.get(s.slice(i, i + 2)) ?? 0) + 1);
    return m;
  };
  const ga = grams(a.toLowerCase());
  const gb = grams(b.toLowerCase());
  let common = 0;
  for (const [g, n] of ga) common += Math.min(n, gb.get(g) ?? 0);
  const total = Math.max(1, a.length - 1) + Math.max(1, b.length - 1);
  return (2 * common) / total;
}

const lastSeg = (s: string) => s.slice(s.lastIndexOf('.') + 1);

/**
 * Likely renames for what is left: each missing weight paired with an unused tensor of the same shape
 * (element count where the tensor has no shape), best first by matching last segment (`weight`, `bias`)
 * and similar names; each tensor used once. A guess to show, never applied.
 */
export function likelyRenames(missing: readonly WeightInfo[], extra: readonly { name: string; shape: readonly number[] | undefined; count: number }[]): [string, string][] {
  const pairs: [number, string, string][] = [];
  if (missing.length * extra.length > 250_000) return []; // too many to guess among
  for (const w of missing) {
    const count = w.shape.reduce((a, c) => a * c, 1);
    for (const t of extra) {
      if (t.name.length > 200) continue; // not a name anyone types into a rename
      if (t.shape ? !same(t.shape, w.shape) : t.count !== count) continue;
      pairs.push([(lastSeg(t.name) === lastSeg(w.name) ? 2 : 0) + similarity(t.name, w.name), t.name, w.name]);
    }
  }
  pairs.sort((a, b) => b[0] - a[0]);
  const from = new Set<string>();
  const to = new Set<string>();
  const out: [string, string][] = [];
  for (const [, f, t] of pairs) {
    if (from.has(f) || to.has(t)) continue;
    from.add(f);
    to.add(t);
    out.push([f, t]);
  }
  return out;
}
