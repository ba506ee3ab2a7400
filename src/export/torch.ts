/**
 * `nnc torch`: a spec as a readable PyTorch module built from stock torch.nn pieces, one class per
 * block, whose state_dict() has exactly the names and shapes of `nnc weights --json` and whose
 * forward() and generate() have nnc's semantics (docs/torch.md).
 *
 * One source of truth: the structure comes from the checked model (src/syntax/resolved.ts), every
 * constructor size from the weight manifest that expansion builds (src/passes/expand.ts), and the
 * output's reading and whether the model can generate from its IR. The fixed part of the semantics
 * (recurrences over padded rows, attention scores, decoding) is Python in torch_prelude.py, of which
 * the emitted module carries the sections it uses; the training script is torch_train.py.
 *
 * Every user string that reaches Python goes through pyStr (string literals), pyDoc (docstrings),
 * pyComment (comments) or an identifier check (attribute, class and argument names).
 */
import { readFileSync } from 'node:fs';
import type { Value } from '../syntax/ast.ts';
import type { ResolvedModel, ResolvedStatement } from '../syntax/resolved.ts';
import type { ModelIR } from '../ir/model.ts';
import type { OpAttrs } from '../ir/ops.ts';

// ───────────── Python text ─────────────

const PY_KEYWORDS = new Set([
  'False', 'None', 'True', 'and', 'as', 'assert', 'async', 'await', 'break', 'class', 'continue', 'def', 'del', 'elif', 'else',
  'except', 'finally', 'for', 'from', 'global', 'if', 'import', 'in', 'is', 'lambda', 'nonlocal', 'not', 'or', 'pass', 'raise',
  'return', 'try', 'while', 'with', 'yield',
]);

/** nn.Module's own attributes (torch 1.13 to 2.x) and the emitted classes' methods: a child with one of these names is reached through _modules. */
const MODULE_ATTRS = new Set([
  'T_destination', 'add_module', 'apply', 'bfloat16', 'buffers', 'call_super_init', 'children', 'compile', 'cpu', 'cuda', 'double',
  'dump_patches', 'eval', 'extra_repr', 'float', 'forward', 'get_buffer', 'get_extra_state', 'get_parameter', 'get_submodule', 'half',
  'ipu', 'load_state_dict', 'modules', 'mtia', 'named_buffers', 'named_children', 'named_modules', 'named_parameters', 'parameters',
  'register_backward_hook', 'register_buffer', 'register_forward_hook', 'register_forward_pre_hook', 'register_full_backward_hook',
  'register_full_backward_pre_hook', 'register_load_state_dict_post_hook', 'register_load_state_dict_pre_hook', 'register_module',
  'register_parameter', 'register_state_dict_post_hook', 'register_state_dict_pre_hook', 'requires_grad_', 'set_extra_state',
  'set_submodule', 'share_memory', 'state_dict', 'to', 'to_empty', 'train', 'training', 'type', 'xpu', 'zero_grad',
  // the emitted classes' own members
  'run', 'encode', 'generate', 'READOUT', 'DECODE', 'MANIFEST', 'SEQ2SEQ',
]);

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A Python string literal (JSON's escapes are Python's). */
export function pyStr(s: string): string {
  return JSON.stringify(s);
}

/** Text for a docstring: backslashes, quotes and control characters escaped. */
function pyDoc(s: string): string {
  return s.replace(/[\\"]/g, (c) => `\\${c}`).replace(/[\u0000-\u001f\u007f\u0085\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Text for a `#` comment: on one line whatever it holds. */
function pyComment(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f\u0085\u2028\u2029]+/g, ' ');
}

/** A Python literal for JSON-like data. */
function pyLit(v: unknown): string {
  if (v === undefined || v === null) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`internal: non-finite number ${v} for Python`);
    return String(v);
  }
  if (typeof v === 'string') return pyStr(v);
  if (Array.isArray(v)) return `(${v.map(pyLit).join(', ')}${v.length === 1 ? ',' : ''})`;
  return `{${Object.entries(v as Record<string, unknown>).map(([k, x]) => `${pyStr(k)}: ${pyLit(x)}`).join(', ')}}`;
}

/** A child module under attribute `name`: `.name` when that is an ordinary attribute, else `._modules["name"]`. */
function child(name: string): string {
  if (/^\d+$/.test(name)) return `[${name}]`;
  return IDENT.test(name) && !PY_KEYWORDS.has(name) && !name.startsWith('_') && !MODULE_ATTRS.has(name) ? `.${name}` : `._modules[${pyStr(name)}]`;
}

/** CamelCase from a name made of identifier characters. */
function camel(s: string): string {
  return s.split(/[^A-Za-z0-9]+|_/).filter(Boolean).map((p) => p[0]!.toUpperCase() + p.slice(1)).join('');
}

// ───────────── the prelude ─────────────

interface Section { readonly name: string; readonly needs: readonly string[]; readonly imports: readonly string[]; readonly body: string }

function readSections(file: string): Map<string, Section> {
  const text = readFileSync(new URL(file, import.meta.url), 'utf8');
  const parts = text.split(/^# %% /m).slice(1);
  const out = new Map<string, Section>();
  for (const part of parts) {
    const nl = part.indexOf('\n');
    const m = /^(\w+)(?: \(needs: ([\w, ]+)\))?$/.exec(part.slice(0, nl).trim());
    if (!m) throw new Error(`internal: bad section header in ${file}: ${part.slice(0, nl)}`);
    const lines = part.slice(nl + 1).split('\n');
    const imports: string[] = [];
    let i = 0;
    for (; i < lines.length && (/^(import|from) /.test(lines[i]!) || lines[i]!.trim() === ''); i++) if (lines[i]!.trim()) imports.push(lines[i]!);
    out.set(m[1]!, { name: m[1]!, needs: m[2] ? m[2].split(',').map((x) => x.trim()) : [], imports, body: lines.slice(i).join('\n').trimEnd() });
  }
  return out;
}

let prelude: Map<string, Section> | undefined;
const sections = () => (prelude ??= readSections('./torch_prelude.py'));

/** The sections in prelude order, with what they need, and their imports gathered (standard library first). */
function renderPrelude(wanted: ReadonlySet<string>): { imports: string[]; body: string } {
  const all = sections();
  const take = new Set<string>();
  const add = (n: string) => {
    if (take.has(n)) return;
    const s = all.get(n);
    if (!s) throw new Error(`internal: no prelude section '${n}'`);
    take.add(n);
    s.needs.forEach(add);
  };
  add('core');
  wanted.forEach(add);
  const chosen = [...all.values()].filter((s) => take.has(s.name));
  // `from m import a` lines of one module merge into one
  const from = new Map<string, Set<string>>();
  const plain = new Set<string>();
  for (const l of chosen.flatMap((s) => s.imports)) {
    const m = /^from (\S+) import (.*)$/.exec(l);
    if (!m) plain.add(l);
    else for (const n of m[2]!.split(',')) (from.get(m[1]!) ?? from.set(m[1]!, new Set()).get(m[1]!)!).add(n.trim());
  }
  const all2 = [...plain, ...[...from].map(([m, ns]) => `from ${m} import ${[...ns].sort().join(', ')}`)];
  const module = (l: string) => l.split(' ')[1]!;
  all2.sort((a, b) => module(a).localeCompare(module(b)));
  // the standard library, then numpy and torch
  const third = (l: string) => /^(torch|numpy)\b/.test(module(l));
  const imports = [...all2.filter((l) => !third(l)), '', ...all2.filter(third)];
  return { imports, body: chosen.map((s) => s.body).join('\n\n\n') };
}

// ───────────── emitting one model ─────────────

interface PyClass { name: string; text: string }

/** What a chain value carries that decides how a later statement lowers (as ChainValue.bidir in src/layers). */
interface Track {
  /** Right after a bidirectional recurrent layer (dropouts between keep it): `pool last` reads its h_n. */
  readonly bidirMerge?: string;
}

interface Scope {
  /** The decoder has a recurrent layer: cross-attention not before one outputs [context; h] (Luong), else the context alone. */
  readonly decoderRecurrent: boolean;
  /** The chain input's max_len (flatten). */
  readonly steps?: number;
}

const RECURRENT = new Set(['rnn', 'gru', 'lstm']);
const ACTIVATION: Record<string, string> = {
  tanh: 'torch.tanh(x)', sigmoid: 'torch.sigmoid(x)', relu: 'torch.relu(x)', gelu: 'nn.functional.gelu(x)',
  softmax: 'torch.softmax(x, dim=-1)', log_softmax: 'torch.log_softmax(x, dim=-1)',
};
const SCORE_CLASS: Record<string, string> = {
  dot: 'DotAttention', scaled: 'ScaledAttention', cosine: 'CosineAttention', general: 'GeneralAttention',
  biased_general: 'BiasedGeneralAttention', activated_general: 'ActivatedGeneralAttention', concat: 'ConcatAttention',
  additive: 'AdditiveAttention', deep: 'DeepAttention', location: 'LocationAttention',
};

function valueText(v: Value): string {
  return v.type === 'number' ? v.raw : v.type === 'word' ? v.value : JSON.stringify(v.value);
}

/** A statement as the user wrote it (normalised), for comments: `enc: lstm hidden = 8, bidirectional (line 4)`. */
function statementText(rs: ResolvedStatement): string {
  const s = rs.stmt;
  const items = s.items.map((i) => (i.name !== undefined ? `${i.name} = ${valueText(i.value)}` : valueText(i.value))).join(', ');
  return pyComment(`${s.label !== undefined ? `${s.label}: ` : ''}${s.kind}${items ? ` ${items}` : ''} (line ${s.span.line})`);
}

class ModelEmitter {
  readonly classes: PyClass[] = [];
  readonly wanted = new Set<string>();
  private readonly shapes: Map<string, readonly number[]>;

  constructor(readonly model: ResolvedModel, readonly ir: ModelIR, readonly prefix: string, private readonly taken: Set<string>) {
    this.shapes = new Map(ir.weights.map((w) => [w.name, w.shape]));
  }

  shape(name: string): readonly number[] {
    const s = this.shapes.get(name);
    if (!s) throw new Error(`internal: nnc torch: no weight '${name}' in the manifest`);
    return s;
  }

  has(name: string): boolean {
    return this.shapes.has(name);
  }

  /** A class for a block body, reused when an identical one exists (repeat copies with the same sizes). */
  blockClass(base: string, doc: string, body: readonly ResolvedStatement[], scope: Scope, track: Track, extraInit: string[] = []): { name: string; track: Track } {
    const init: string[] = [...extraInit];
    const fwd: string[] = [];
    const after = this.chain(body, scope, track, init, fwd);
    const text = (name: string) => classText(name, pyDoc(doc), init, [['def forward(self, x: Tensor, ctx: Context) -> Tensor:', ...fwd.map((l) => `    ${l}`), '    return x']]);
    const probe = text('@');
    const same = this.classes.find((c) => c.text === probe.replace('@', c.name));
    if (same) return { name: same.name, track: after };
    const name = this.unique(base);
    this.classes.push({ name, text: text(name) });
    return { name, track: after };
  }

  unique(base: string): string {
    let name = base;
    for (let i = 2; this.taken.has(name); i++) name = `${base}${i}`;
    this.taken.add(name);
    return name;
  }

  /** Emits a chain: constructor lines into `init`, forward lines into `fwd`; returns the track after it. */
  chain(body: readonly ResolvedStatement[], scope: Scope, track: Track, init: string[], fwd: string[]): Track {
    let pendingAttention: string | undefined;
    body.forEach((rs, i) => {
      const self = `self${child(rs.name)}`;
      const note = `  # ${statementText(rs)}`;
      const w = (suffix: string) => this.shape(`${rs.path}.${suffix}`);
      const a = rs.attrs;
      const next = body[i + 1];
      switch (rs.kind) {
        case 'embedding': {
          const [V, D] = w('weight');
          init.push(`${self} = nn.Embedding(${V}, ${D})${note}`);
          fwd.push(`x = ${self}(x)`);
          track = {};
          break;
        }
        case 'positional':
          this.wanted.add('positional');
          if (a.kind === 'learned') {
            const [L, D] = w('weight');
            init.push(`${self} = nn.Embedding(${L}, ${D})${note}`);
            fwd.push(`x = x + learned_positions(${self}, positions(x, ctx))${note}`);
          } else fwd.push(`x = x + sinusoid(positions(x, ctx), x.shape[-1])${note}`);
          track = {};
          break;
        case 'rnn':
        case 'gru':
        case 'lstm': {
          const [GH, I] = w('weight_ih_l0');
          const H = a.hidden as number;
          if (GH !== H * { rnn: 1, gru: 3, lstm: 4 }[rs.kind]!) throw new Error(`internal: nnc torch: ${rs.path} weight_ih_l0 is [${GH}, ${I}]`);
          const args = [`${I}`, `${H}`];
          if ((a.layers as number) !== 1) args.push(`num_layers=${a.layers}`);
          if (!a.bias) args.push('bias=False');
          args.push('batch_first=True');
          if (a.bidirectional) args.push('bidirectional=True');
          if (rs.kind === 'rnn' && a.act !== 'tanh') args.push(`nonlinearity=${pyStr(a.act as string)}`);
          const before = rs.kind === 'gru' && a.reset === 'before';
          if (before) this.wanted.add('gru_before');
          const cls = before ? 'GRUResetBefore' : `nn.${rs.kind.toUpperCase()}`;
          init.push(`${self} = ${cls}(${args.join(', ')})${note}`);
          const merge = a.bidirectional && a.merge !== 'concat' ? `, merge=${pyStr(a.merge as string)}` : '';
          if (pendingAttention) {
            this.wanted.add('bahdanau');
            fwd.push(`x = attend_then_recurrent(${pendingAttention}, ${self}, x, ctx)${note}  (Bahdanau: the attention reads its previous h)`);
            pendingAttention = undefined;
          } else {
            this.wanted.add('recurrent');
            fwd.push(`x = recurrent(${self}, x, ctx${merge})${note}`);
          }
          track = a.bidirectional ? { bidirMerge: a.merge as string } : {};
          break;
        }
        case 'linear': {
          const [O, I] = w('weight');
          init.push(`${self} = nn.Linear(${I}, ${O}${a.bias ? '' : ', bias=False'})${note}`);
          fwd.push(`x = ${self}(x)`);
          track = {};
          break;
        }
        case 'tanh':
        case 'sigmoid':
        case 'relu':
        case 'gelu':
        case 'softmax':
        case 'log_softmax':
          fwd.push(`x = ${ACTIVATION[rs.kind]}${note}`);
          track = {};
          break;
        case 'layernorm': {
          const [D] = w('weight');
          init.push(`${self} = nn.LayerNorm(${D}${a.eps !== 1e-5 ? `, eps=${pyLit(a.eps)}` : ''})${note}`);
          fwd.push(`x = ${self}(x)`);
          track = {};
          break;
        }
        case 'dropout':
          init.push(`${self} = nn.Dropout(${pyLit(a.p)})${note}`);
          fwd.push(`x = ${self}(x)  # identity in eval mode`);
          break;
        case 'pool':
          this.wanted.add('pool');
          if (a.mode === 'last' && track.bidirMerge !== undefined) {
            fwd.push(`x = pool_last_bidirectional(ctx.final, ${pyStr(track.bidirMerge)})${note}: the bidirectional layer's h_n`);
          } else fwd.push(`x = pool(x, ctx.lengths, ${pyStr(a.mode as string)})${note}`);
          track = {};
          break;
        case 'flatten':
          this.wanted.add('flatten');
          if (scope.steps === undefined) throw new Error(`internal: nnc torch: flatten without max_len`);
          fwd.push(`x = flatten(x, ${scope.steps})${note}`);
          track = {};
          break;
        case 'attention': {
          const ctor = this.attention(rs);
          init.push(`${self} = ${ctor}${note}`);
          if (a.self) {
            this.wanted.add('self_attention');
            fwd.push(`x = self_attention(${self}, x, ctx, causal=${a.causal ? 'True' : 'False'})${note}`);
          } else if (next && RECURRENT.has(next.kind)) {
            pendingAttention = self; // Bahdanau: the next recurrent layer runs it inside its steps
          } else if (scope.decoderRecurrent) {
            fwd.push(`x = torch.cat([${self}(x, ctx.memory, ctx.memory_valid), x], -1)${note}: [context; h] (Luong)`);
          } else fwd.push(`x = ${self}(x, ctx.memory, ctx.memory_valid)${note}: the context`);
          track = {};
          break;
        }
        case 'residual': {
          const cls = this.blockClass(`${this.prefix}${camel(blockBase(rs.path))}`, `residual { ... } at line ${rs.stmt.span.line}: x + body(x) (weights under ${displayPath(rs.path)}).`, rs.body ?? [], scope, track);
          init.push(`${self} = ${cls.name}()${note}`);
          fwd.push(`x = x + ${self}(x, ctx)${note}`);
          track = {};
          break;
        }
        case 'repeat': {
          const names: string[] = [];
          for (const copy of rs.copies ?? []) {
            const cls = this.blockClass(`${this.prefix}${camel(blockBase(rs.path))}`, `One copy of repeat ${a.count} { ... } at line ${rs.stmt.span.line} (weights under ${displayPath(rs.path)}.<copy>).`, copy, scope, track);
            names.push(cls.name);
            track = cls.track;
          }
          const runs: [string, number][] = [];
          for (const n of names) {
            const last = runs[runs.length - 1];
            if (last && last[0] === n) last[1]++;
            else runs.push([n, 1]);
          }
          const list = runs.map(([n, c]) => (c === 1 ? `[${n}()]` : `[${n}() for _ in range(${c})]`)).join(' + ');
          init.push(`${self} = nn.ModuleList(${list})${note}`);
          fwd.push(`for block in ${self}:${note}`, '    x = block(x, ctx)');
          break;
        }
        default:
          throw new Error(`internal: nnc torch: no PyTorch form for '${rs.kind}'`);
      }
    });
    if (pendingAttention) throw new Error('internal: nnc torch: attention before a recurrent layer without one');
    return track;
  }

  /** The constructor of an attention layer, its sizes read from its weights. */
  attention(rs: ResolvedStatement): string {
    const a = rs.attrs;
    const p = rs.path;
    const opt = (name: string, v: unknown, dflt: unknown) => (v !== undefined && v !== dflt ? [`${name}=${pyLit(v)}`] : []);
    const normalize = opt('normalize', a.normalize, 'softmax');
    const act = opt('act', a.act, 'tanh');
    if (a.heads !== undefined) {
      this.wanted.add('heads');
      const [E] = this.shape(`${p}.out_proj.weight`);
      const kdim = this.has(`${p}.k_proj_weight`) ? this.shape(`${p}.k_proj_weight`)[1]! : E!;
      const score = rs.written.has('score') ? (a.score as string) : 'scaled';
      return `HeadsAttention(${E}, ${a.heads}, kdim=${kdim}${score !== 'scaled' ? `, score=${pyStr(score)}` : ''}${normalize.map((x) => `, ${x}`).join('')})`;
    }
    const score = a.score as string;
    this.wanted.add(`score_${score}`);
    const args: string[] = [];
    switch (score) {
      case 'general':
      case 'activated_general': {
        const [dq, dk] = this.shape(`${p}.weight`);
        args.push(`${dq}`, `${dk}`);
        break;
      }
      case 'biased_general': {
        const [dk, dq] = this.shape(`${p}.weight`);
        args.push(`${dq}`, `${dk}`);
        break;
      }
      case 'concat': {
        const [dim, both] = this.shape(`${p}.proj.weight`);
        args.push(`${both}`, `${dim}`);
        break;
      }
      case 'additive':
        args.push(`${this.shape(`${p}.query.weight`)[1]}`, `${this.shape(`${p}.key.weight`)[1]}`, `${this.shape(`${p}.key.weight`)[0]}`);
        break;
      case 'deep': {
        const [dim, both] = this.shape(`${p}.layers.0.weight`);
        args.push(`${both}`, `${dim}`, `${a.depth}`);
        break;
      }
      case 'location': {
        const [L, dq] = this.shape(`${p}.weight`);
        args.push(`${dq}`, `${L}`);
        break;
      }
    }
    const withAct = ['activated_general', 'concat', 'additive', 'deep'].includes(score) ? act : [];
    return `${SCORE_CLASS[score]}(${[...args, ...normalize, ...withAct].join(', ')})`;
  }
}

/** `repeat0.3.residual1` → `repeat0.residual1` (a class serves every copy with the same sizes). */
function blockBase(path: string): string {
  return path.split('.').filter((s) => !/^\d+$/.test(s)).join('.');
}

function displayPath(path: string): string {
  return path.replace(/\.\d+(?=\.|$)/g, '.<copy>');
}

/** A child named `training` shadows nn.Module's own flag, which train() / eval() then set past nn.Module.__setattr__. */
const TRAINING_CHILD = [
  'def train(self, mode: bool = True) -> "nn.Module":',
  '    """A layer here is named \'training\', like nn.Module\'s flag: set the flag without touching the layer."""',
  '    object.__setattr__(self, "training", mode)',
  '    for module in self.children():',
  '        module.train(mode)',
  '    return self',
];

/** A class: docstring, class attributes, __init__ (registering children in order), then methods (each a list of lines). */
function classText(name: string, doc: string, init: readonly string[], methods: readonly (readonly string[])[], attrs: readonly string[] = []): string {
  const lines = [`class ${name}(nn.Module):`, `    """${doc}"""`, ''];
  if (attrs.length) lines.push(...attrs.map((l) => `    ${l}`), '');
  lines.push('    def __init__(self) -> None:', '        super().__init__()', ...init.map((l) => `        ${l}`));
  const all = init.some((l) => l.startsWith(`self${child('training')} =`)) ? [...methods, TRAINING_CHILD] : methods;
  for (const m of all) lines.push('', ...m.map((l) => `    ${l}`));
  return lines.join('\n');
}

// ───────────── the module ─────────────

export interface TorchModel {
  readonly resolved: ResolvedModel;
  readonly ir: ModelIR;
}

/** How the output reads as a distribution (as generate() reads it): 'logprob' | 'prob' | 'logits'. */
export function readout(ir: ModelIR): 'prob' | 'logprob' | 'logits' {
  const g = ir.graph;
  let out = g.get(g.outputs[0]!.node);
  if (out.op === 'mask') out = g.get(out.inputs[0]!);
  return out.op === 'softmax' ? ((out.attrs as OpAttrs['softmax']).log ? 'logprob' : 'prob') : 'logits';
}

/** Every global name of the prelude (its functions, classes, constants and imports): emitted names must not shadow them. */
function preludeGlobals(): Set<string> {
  const names = new Set<string>(['MODELS', 'Model']);
  for (const s of sections().values()) {
    for (const m of s.body.matchAll(/^(?:def|class) (\w+)|^(\w+)(?: *:[^=]*)? = /gm)) names.add(m[1] ?? m[2]!);
    for (const l of s.imports) {
      const from = /^from \S+ import (.*)$/.exec(l);
      for (const part of (from ? from[1]! : l.replace(/^import /, '')).split(',')) names.add(part.trim().split(/\s+as\s+|\./).pop()!.trim());
    }
  }
  return names;
}

/** A forward() argument name: not a keyword, a global of the module, or a local of forward(). */
function argName(name: string, taken: Set<string>, globals: ReadonlySet<string>): string {
  const locals = ['self', 'options', 'memory', 'valid', 'state', 'y'];
  let n = name;
  while (PY_KEYWORDS.has(n) || globals.has(n) || locals.includes(n) || taken.has(n) || n.startsWith('__')) n += '_';
  taken.add(n);
  return n;
}

function emitModel(m: TorchModel, prefixTaken: Set<string>, globals: ReadonlySet<string>, source: string): { text: string; className: string; wanted: Set<string> } {
  const { resolved, ir } = m;
  const className = uniqueName(camel(resolved.name) || 'Model', prefixTaken);
  const em = new ModelEmitter(resolved, ir, className, prefixTaken);
  const seq2seq = resolved.chain.some((s) => s.kind === 'encoder' || s.kind === 'decoder');
  const outNode = ir.graph.get(ir.graph.outputs[0]!.node);
  const outShape = outNode.shape;
  const gen = ir.generate.ok;
  const read = readout(ir);
  const decode = ir.decode;
  const decodeDefaults = decode
    ? { strategy: decode.sample ? 'sample' : decode.beam !== undefined ? 'beam' : 'greedy', beam: decode.beam, max_len: decode.max_len, bos: decode.bos, eos: decode.eos, temperature: decode.temperature, top_k: decode.top_k }
    : {};
  const manifest = {
    model: resolved.name,
    inputs: ir.inputs.map((i) => ({ name: i.name, form: i.form, ...(i.vocab !== undefined ? { vocab: i.vocab } : {}), ...(i.dim !== undefined ? { dim: i.dim } : {}), ...(i.maxLen !== undefined ? { max_len: i.maxLen } : {}) })),
    output: { name: ir.output.name, shape: outShape },
    weights: ir.weights.map((w) => [w.name, w.shape]),
  };
  const taken = new Set<string>();
  const args = ir.inputs.map((i) => argName(i.name, taken, globals));
  const lens = ir.inputs.map((i) => argName(`${i.name}_lengths`, taken, globals));
  const check = (k: number) => {
    const i = ir.inputs[k]!;
    return i.form === 'tokens' ? `${args[k]} = tokens_in(${args[k]}, ${i.vocab}, ${pyStr(i.name)})` : `${args[k]} = vectors_in(${args[k]}, ${i.dim}, ${pyStr(i.name)})`;
  };
  const lengthsLine = (k: number) => `${lens[k]} = lengths_of(${args[k]}, ${lens[k]}, ${pyStr(ir.inputs[k]!.name)})`;
  const vocab = typeof outShape[outShape.length - 1] === 'number' ? outShape[outShape.length - 1] : undefined;
  const outDoc = `${ir.output.name} [${outShape.join(', ')}]${ir.output.seq ? ' (0 at padded steps)' : ''}`;
  const init: string[] = [];
  const methods: string[] = [];
  const attrs = [
    `#: how the output reads as a distribution: ${read === 'logprob' ? 'log-probabilities (log_softmax)' : read === 'prob' ? 'probabilities (softmax)' : 'logits'}`,
    `READOUT = ${pyStr(read)}`,
    `#: the spec's decode statement: generate()'s defaults`,
    `DECODE = ${pyLit(Object.fromEntries(Object.entries(decodeDefaults).filter(([, v]) => v !== undefined)))}`,
    `#: nnc's manifest: inputs, output, and the weights in nnc's load order`,
    'MANIFEST = {',
    `    "model": ${pyStr(manifest.model)},`,
    `    "inputs": ${pyLit(manifest.inputs)},`,
    `    "output": ${pyLit(manifest.output)},`,
    '    "weights": (',
    ...manifest.weights.map((w) => `        ${pyLit(w)},`),
    '    ),',
    '}',
  ];
  const sig = (k: number[]) => [...k.map((i) => `${args[i]}: Tensor`), ...k.map((i) => `${lens[i]}: Optional[Tensor] = None`)].join(', ');
  if (seq2seq) {
    const enc = resolved.chain.find((s) => s.kind === 'encoder')!;
    const dec = resolved.chain.find((s) => s.kind === 'decoder')!;
    const hasRec = (b: readonly ResolvedStatement[]): boolean => b.some((s) => RECURRENT.has(s.kind) || hasRec(s.body ?? []) || (s.copies ?? []).some(hasRec));
    const encCls = em.blockClass(`${className}Encoder`, `The encoder (line ${enc.stmt.span.line}): reads '${ir.inputs[0]!.name}'; its output is the memory that decoder attention reads.`, enc.body ?? [], { decoderRecurrent: false, steps: ir.inputs[0]!.maxLen }, {});
    const mode = dec.attrs.init as string;
    const bridgeInit: string[] = [];
    if (mode === 'bridge') {
      const [H, F] = em.shape('decoder.bridge.weight');
      bridgeInit.push(`self.bridge = nn.Linear(${F}, ${H})  # decoder init = bridge: h0 = tanh(W f + b)`);
    }
    const decCls = em.blockClass(`${className}Decoder`, `The decoder (line ${dec.stmt.span.line}, init = ${mode}): reads '${ir.inputs[1]!.name}' (teacher-forced), attends to the encoder's memory.`, dec.body ?? [], { decoderRecurrent: hasRec(dec.body ?? []), steps: ir.inputs[1]!.maxLen }, {}, bridgeInit);
    init.push(`self.encoder = ${encCls.name}()`, `self.decoder = ${decCls.name}()`);
    // the decoder's recurrent layers and their initial state
    const states: string[] = [];
    const walk = (b: readonly ResolvedStatement[], path: string) => {
      for (const s of b) {
        const here = `${path}${child(s.name)}`;
        if (RECURRENT.has(s.kind) && mode !== 'zeros') {
          const fn = mode === 'bridge' ? `bridge_state(self.decoder.bridge, final, ${s.attrs.layers}, lstm=${s.kind === 'lstm' ? 'True' : 'False'})` : `final_state(final, ${s.attrs.layers}, lstm=${s.kind === 'lstm' ? 'True' : 'False'})`;
          states.push(`    ${here}: ${fn},`);
        }
        if (s.body) walk(s.body, here);
        (s.copies ?? []).forEach((c, k) => walk(c, `${here}[${k}]`));
      }
    };
    walk(dec.body ?? [], 'self.decoder');
    if (states.length) em.wanted.add('initial_state');
    methods.push(
      'def encode(self, source: Tensor, lengths: Tensor) -> Tuple[Tensor, Tensor, State]:',
      `    """The encoder over the source: its memory [B, S, D], the memory's valid positions [B, S], and the decoder's initial state (decoder init = ${mode})."""`,
      '    ctx = Context(lengths)',
      '    memory = self.encoder(source, ctx)',
      ...(states.length
        ? ['    final = ctx.final  # the encoder\'s last recurrent layer', '    state: State = {', ...states.map((l) => `    ${l}`), '    }']
        : ['    state: State = {}  # every decoder recurrent layer starts from zeros']),
      '    return memory, ctx.valid(source.shape[1]), state',
      '',
      `def forward(self, ${sig([0, 1])}) -> Tensor:`,
      `    """Teacher-forced (${pyDoc(ir.inputs[1]!.name)} starts with bos; step i predicts token i + 1): ${pyDoc(outDoc)}."""`,
      `    ${check(0)}`,
      `    ${check(1)}`,
      `    ${lengthsLine(0)}`,
      `    ${lengthsLine(1)}`,
      `    memory, valid, state = self.encode(${args[0]}, ${lens[0]})`,
      `    y = self.decoder(${args[1]}, Context(${lens[1]}, state, memory, valid))`,
      `    return zero_padded(y, ${lens[1]})`,
    );
    if (gen) {
      em.wanted.add('decoding');
      methods.push(
        '',
        '@torch.no_grad()',
        `def generate(self, ${sig([0])}, **options) -> Generated:`,
        `    """Decodes each source row (docs/seq2seq.md): options strategy ('greedy' | 'beam' | 'sample'), beam, max_len, bos, eos, temperature, top_k, seed, length_normalize, n_best; defaults from DECODE."""`,
        `    ${check(0)}`,
        `    ${lengthsLine(0)}`,
        `    return decode(Seq2SeqSession(self, ${args[0]}, ${lens[0]}), resolve_options(options, self.DECODE, ${vocab}))`,
      );
    }
  } else {
    const fwd: string[] = [];
    em.chain(resolved.chain, { decoderRecurrent: false, steps: ir.inputs[0]!.maxLen }, {}, init, fwd);
    methods.push(
      'def run(self, x: Tensor, ctx: Context) -> Tensor:',
      '    """The chain of layers, without the final padding mask."""',
      ...fwd.map((l) => `    ${l}`),
      '    return x',
      '',
      `def forward(self, ${sig([0])}) -> Tensor:`,
      `    """${pyDoc(outDoc)}."""`,
      `    ${check(0)}`,
      `    ${lengthsLine(0)}`,
      ir.output.seq ? `    return zero_padded(self.run(${args[0]}, Context(${lens[0]})), ${lens[0]})` : `    return self.run(${args[0]}, Context(${lens[0]}))`,
    );
    if (gen) {
      em.wanted.add('decoding');
      methods.push(
        '',
        '@torch.no_grad()',
        `def generate(self, ${sig([0])}, **options) -> Generated:`,
        `    """Continues each prompt row (docs/seq2seq.md): options strategy ('greedy' | 'beam' | 'sample'), beam, max_len, bos, eos, temperature, top_k, seed, length_normalize, n_best; defaults from DECODE."""`,
        `    ${check(0)}`,
        `    ${lengthsLine(0)}`,
        `    return decode(LanguageModelSession(self, ${args[0]}, ${lens[0]}), resolve_options(options, self.DECODE, ${vocab}))`,
      );
    }
  }
  const doc = [
    `Model ${pyDoc(resolved.name)} (line ${resolved.span.line} of ${pyDoc(source)}).`,
    '',
    `    forward(${args.join(', ')}, ...) -> ${pyDoc(outDoc)}${gen ? '; generate() decodes' : ''}.`,
    `    Weights load from nnc's safetensors: model.load_state_dict(load_safetensors(path)).`,
    '    ',
  ].join('\n');
  const grouped: string[][] = [[]];
  for (const l of methods) (l === '' ? grouped.push([]) : grouped[grouped.length - 1]!.push(l));
  const text = classText(className, doc, init, grouped, attrs);
  const classes = [...em.classes.map((c) => c.text), text].join('\n\n\n');
  return { text: classes, className, wanted: em.wanted };
}

function uniqueName(base: string, taken: Set<string>): string {
  let name = /^[A-Za-z]/.test(base) ? base : `Model${base}`;
  if (taken.has(name) || PY_KEYWORDS.has(name)) name = `${name}Model`;
  const stem = name;
  for (let i = 2; taken.has(name); i++) name = `${stem}${i}`;
  taken.add(name);
  return name;
}

/** The Python module for the models of one spec file. `source` is the spec's path as given (it is only quoted). */
export function emitTorch(models: readonly TorchModel[], source: string, version: string): string {
  const globals = preludeGlobals();
  const taken = new Set<string>(globals);
  const emitted = models.map((m) => emitModel(m, taken, globals, source));
  const wanted = new Set(emitted.flatMap((e) => [...e.wanted]));
  wanted.add('safetensors');
  const { imports, body } = renderPrelude(wanted);
  const names = emitted.map((e) => e.className);
  const header = [
    `"""PyTorch module for ${names.join(', ')}, generated by nnc ${pyDoc(version)} from ${pyDoc(source)}.`,
    '',
    'Do not edit: change the .nn file and run `nnc torch` again. Stock torch.nn pieces, one class per',
    'block, whose state_dict() holds exactly the weights of `nnc weights --json` (names and shapes), so',
    'weights move between nnc and PyTorch unchanged; forward() and generate() follow nnc\'s semantics',
    '(docs/language.md, docs/seq2seq.md, docs/torch.md):',
    '',
    `    model = ${names[0]}()`,
    '    model.load_state_dict(load_safetensors("weights.safetensors"))',
    '    model.eval()',
    '    y = model(...)                     # padded rows with lengths, as pack_padded_sequence',
    '    save_safetensors("out.safetensors", model.state_dict())   # loads into nnc',
    '"""',
  ].join('\n');
  return [
    header,
    imports.join('\n'),
    '',
    '# ─── nnc\'s semantics in PyTorch (the same in every module nnc writes) ───',
    '',
    body,
    '',
    '',
    `# ─── the model${models.length > 1 ? 's' : ''} of ${pyComment(source)} ───`,
    '',
    emitted.map((e) => e.text).join('\n\n\n'),
    '',
    '',
    `#: every model of the file, by name; Model is the first`,
    `MODELS = {${names.map((n, i) => `${pyStr(models[i]!.resolved.name)}: ${n}`).join(', ')}}`,
    `Model = ${names[0]}`,
    '',
  ].join('\n');
}

/** The training script for a module written by emitTorch: `modulePath` is the module's file name, relative to the script. */
export function emitTorchTrain(moduleFile: string, source: string, version: string): string {
  const text = readFileSync(new URL('./torch_train.py', import.meta.url), 'utf8');
  return text
    .replace('@@HEADER@@', `Generated by nnc ${pyDoc(version)} from ${pyDoc(source)} for ${pyDoc(moduleFile)}.`)
    .replace('@@MODULE@@', pyStr(moduleFile));
}

