/**
 * Models off the calling thread: `createModel({ worker })` gives a model with the same API whose
 * kernels run in a Web Worker (a worker thread in Node), so a page keeps drawing and a server keeps
 * answering while it computes.
 *
 * Functions cannot be posted to a worker, so the worker loads the generated module itself and
 * builds the model there; this thread holds a proxy that posts each call and awaits its reply.
 *
 *  - `worker: true`: nnc starts the worker. It imports the generated module by its URL (the module's
 *    create function passes its import.meta.url) and this file, and calls serve(). That needs the
 *    module as a file of its own: Node, or a page that loads modules unbundled. In a bundle the
 *    module and the runtime are one file that cannot be imported again in a worker: refused, with
 *    the way out below.
 *  - `worker: new Worker(...)`: the app starts the worker, whose script imports the generated
 *    module(s) and calls `serve(module)` — bundlers (Vite, esbuild, webpack) then build that script
 *    with everything it needs. One worker can serve several models; the app terminates it.
 *
 * The protocol: each request carries an id, and the worker answers it with `ok` or `err`; a stream
 * (and a generate, which runs as one) also posts an `event` per step, as it comes. Requests from one
 * thread are handled in order. Float32Array results are transferred, not copied.
 */
import type { CreateOptions, ModelWorker } from './types.ts';
import type { ModelManifest, NncModel } from './model.ts';
import { macrotask, type GenerateOptions, type GenerateResult, type StepEvent } from './decode.ts';
import { NncError, typeName } from './errors.ts';
import { CREATE_OPTIONS, checkOptions } from './options.ts';
import { isNode } from './host.ts';
import { isWeightStream, postableWeights, readWeightStream, type LoadOptions, type WeightSource } from './weights.ts';

type Op = 'loadWeights' | 'forward' | 'generate' | 'stream';
type Request =
  | { t: 'create'; id: number; manifest: ModelManifest; options: Record<string, unknown> }
  | { t: 'call'; id: number; model: number; op: Op; args: unknown[]; aborted?: boolean }
  | { t: 'abort'; id: number }
  | { t: 'dispose'; model: number };
interface WireError {
  name: string;
  message: string;
}
type Reply =
  | { t: 'ok'; id: number; value: unknown }
  | { t: 'err'; id: number; error: WireError }
  | { t: 'event'; id: number; event: StepEvent };

/** A request as a caller writes it: the channel adds the id. */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

type AnyModel = NncModel<unknown, unknown, unknown>;
type CreateFn = (options: CreateOptions) => Promise<AnyModel>;

const toWire = (e: unknown): WireError => ({ name: String((e as Error)?.name ?? 'Error'), message: String((e as Error)?.message ?? e) });
function fromWire(w: WireError): Error {
  if (w.name === 'NncError') return new NncError(w.message);
  const e = new Error(w.message);
  e.name = w.name;
  return e;
}

/** The ArrayBuffers of `arrays` that can be transferred (whole, unshared buffers), each once. */
function transferable(arrays: readonly (Float32Array | undefined)[]): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const a of arrays) {
    if (a && a.buffer instanceof ArrayBuffer && a.byteOffset === 0 && a.byteLength === a.buffer.byteLength) out.add(a.buffer);
  }
  return [...out];
}

// ───────────── the worker side ─────────────

/** What serve() is given: generated modules (their namespaces), whose create functions it calls. */
export type ServedModule = object;
/** Options every model this worker creates gets (e.g. `gpu: GPU`, which cannot be posted), under those createModel posts. */
export type ServeOptions = Omit<CreateOptions, 'worker'>;

/** The create function of the model whose manifest is `manifest`: `createX` beside `XManifest` (`createModel` beside `manifest`). */
function findCreate(modules: readonly ServedModule[], manifest: ModelManifest): CreateFn {
  const want = JSON.stringify(manifest);
  const served: string[] = [];
  for (const m of modules) {
    for (const [key, value] of Object.entries(m)) {
      if (!/(^m|M)anifest$/.test(key) || typeof value !== 'object' || value === null) continue;
      served.push(String((value as ModelManifest).model));
      if (JSON.stringify(value) !== want) continue;
      const create = (m as Record<string, unknown>)[key === 'manifest' ? 'createModel' : `create${key.slice(0, -'Manifest'.length)}`];
      if (typeof create === 'function') return create as CreateFn;
    }
  }
  const list = [...new Set(served)].join(', ') || 'none';
  throw new NncError(`this worker does not serve model ${manifest.model} as the app compiled it (it serves: ${list}): its script must call serve() with the same generated module that createModel comes from`);
}

/**
 * Serves models to the thread that started this worker: call it in the worker's script with the
 * generated module(s) whose models the app creates with `createModel({ worker })`.
 *
 *   // model.worker.ts
 *   import { serve } from 'nnc/runtime';
 *   import * as dates from './generated/dates.ts';
 *   serve(dates);          // or serve([dates, other], { gpu: GPU }) — options every model gets
 */
export function serve(modules: ServedModule | readonly ServedModule[], options: ServeOptions = {}): void {
  checkOptions('serve', CREATE_OPTIONS, options, ['worker']);
  const list = (Array.isArray(modules) ? modules : [modules]) as readonly ServedModule[];
  if (list.length === 0 || list.some((m) => typeof m !== 'object' || m === null)) throw new NncError(`serve() expects generated modules (import * as m from './generated/x.ts'; serve(m)), got ${typeName(modules)}`);
  type Port = { postMessage(m: unknown, transfer?: ArrayBuffer[]): void; on?(e: 'message', f: (m: unknown) => void): void; addEventListener?(e: 'message', f: (ev: { data: unknown }) => void): void };
  const listen = (port: Port) => {
    const post = (r: Reply, transfer: ArrayBuffer[] = []) => port.postMessage(r, transfer);
    /** Per model: a loadWeights in progress (later calls wait for it) and the error of the last one, if it failed. */
    const models = new Map<number, { model: AnyModel; loading?: Promise<unknown>; loadError?: unknown }>();
    const aborts = new Map<number, AbortController>();
    const model = (id: number) => {
      const m = models.get(id);
      if (!m) throw new NncError('this model was disposed');
      return m;
    };
    /** generate and stream: the stream, run step by step (with a task between steps, so an abort gets in). */
    const decode = async (id: number, m: AnyModel, args: unknown[], aborted: boolean, events: boolean): Promise<GenerateResult> => {
      const ac = new AbortController();
      if (aborted) ac.abort();
      aborts.set(id, ac);
      try {
        const opts = (args[1] ?? {}) as GenerateOptions;
        const it = m.stream(args[0], typeof opts === 'object' && opts !== null ? { ...opts, signal: ac.signal } : opts);
        for (;;) {
          const r = await it.next();
          if (r.done) return r.value;
          if (events) post({ t: 'event', id, event: r.value });
          // a task between steps (not only the turns generate() gives every few ms), so an abort gets in at once
          await macrotask();
        }
      } finally {
        aborts.delete(id);
      }
    };
    const handle = async (q: Request): Promise<void> => {
      if (q.t === 'abort') return void aborts.get(q.id)?.abort();
      if (q.t === 'dispose') {
        models.get(q.model)?.model.dispose();
        models.delete(q.model);
        return;
      }
      try {
        if (q.t === 'create') {
          const m = await findCreate(list, q.manifest)({ ...options, ...q.options, worker: false });
          models.set(q.id, { model: m });
          return post({ t: 'ok', id: q.id, value: { backend: m.backend, device: m.device } });
        }
        const entry = model(q.model);
        await entry.loading;
        if (q.op === 'loadWeights') {
          const loading = (async () => entry.model.loadWeights(q.args[0] as WeightSource, q.args[1] as LoadOptions))();
          entry.loading = loading.then(() => delete entry.loadError, (e: unknown) => (entry.loadError = e));
          await loading;
          return post({ t: 'ok', id: q.id, value: undefined });
        }
        if (entry.loadError !== undefined) throw new NncError(`the last loadWeights() of this ${entry.model.manifest.model} model failed, so it has no weights to run: ${(entry.loadError as Error)?.message ?? entry.loadError}`);
        if (q.op === 'forward') {
          const out = (await entry.model.forward(q.args[0])) as Record<string, { data: Float32Array }>;
          return post({ t: 'ok', id: q.id, value: out }, transferable(Object.values(out).map((o) => o.data)));
        }
        const r = await decode(q.id, entry.model, q.args, q.aborted === true, q.op === 'stream');
        post({ t: 'ok', id: q.id, value: r }, transferable((r.attention ?? []).map((a) => a.data)));
      } catch (e) {
        post({ t: 'err', id: q.id, error: toWire(e) });
      }
    };
    const onMessage = (m: unknown) => void handle(m as Request);
    if (port.on) port.on('message', onMessage);
    else port.addEventListener!('message', (ev) => onMessage(ev.data));
  };
  if (isNode) {
    const spec = 'node:worker_threads';
    // a worker thread's parentPort keeps messages until a listener is attached
    void import(/* @vite-ignore */ spec).then((wt: { parentPort: Port | null }) => {
      if (!wt.parentPort) throw new NncError('serve() runs in a worker thread (the script of the Worker passed to createModel({ worker })), not on the main thread');
      listen(wt.parentPort);
    });
    return;
  }
  const scope = globalThis as { WorkerGlobalScope?: unknown; postMessage?: unknown };
  if (scope.WorkerGlobalScope === undefined || typeof scope.postMessage !== 'function') throw new NncError('serve() runs in a Web Worker (the script of the Worker passed to createModel({ worker })), not in a page');
  listen(globalThis as unknown as Port);
}

// ───────────── the calling side ─────────────

interface Waiter {
  resolve(v: unknown): void;
  reject(e: Error): void;
  onEvent?: (e: StepEvent) => void;
}
type Listenable = ModelWorker & {
  on?(e: string, f: (v: unknown) => void): void;
  addEventListener?(e: string, f: (ev: { data?: unknown; message?: string }) => void): void;
  ref?(): void;
  unref?(): void;
};

/** One per worker: posts requests and routes the replies to whoever waits for them. */
class Channel {
  private nextId = 1;
  private readonly waiting = new Map<number, Waiter>();
  private dead: Error | undefined;
  /** Called once the worker has answered (it loaded) or failed: frees a Blob URL. */
  onAlive: (() => void) | undefined;

  private readonly w: Listenable;
  private readonly own: boolean;

  constructor(w: Listenable, own: boolean) {
    this.w = w;
    this.own = own;
    const reply = (r: Reply) => {
      this.onAlive?.();
      this.onAlive = undefined;
      const wt = this.waiting.get(r.id);
      if (!wt) return;
      if (r.t === 'event') return wt.onEvent?.(r.event);
      this.waiting.delete(r.id);
      this.idle();
      if (r.t === 'ok') wt.resolve(r.value);
      else wt.reject(fromWire(r.error));
    };
    const fail = (why: string) => this.fail(new NncError(`the model's worker stopped: ${why}`));
    if (typeof w.on === 'function') {
      w.on('message', (m) => reply(m as Reply));
      w.on('error', (e) => fail(String((e as Error)?.message ?? e)));
      w.on('exit', (code) => fail(`it exited (code ${String(code)})`));
    } else if (typeof w.addEventListener === 'function') {
      w.addEventListener('message', (ev) => reply(ev.data as Reply));
      w.addEventListener('error', (ev) => fail(ev.message || 'its script failed to load or threw (see the console)'));
      w.addEventListener('messageerror', () => fail('a reply could not be read'));
    } else throw new NncError(`createModel({ worker }) expects true or a Worker (browser Worker or Node worker_threads Worker), got ${typeName(w)}`);
    this.idle();
  }

  /** A worker nnc started keeps Node running only while a call waits for it. */
  private idle(): void {
    if (this.own) (this.waiting.size ? this.w.ref : this.w.unref)?.call(this.w);
  }

  post(msg: Request, transfer: ArrayBuffer[] = []): void {
    if (this.dead) throw this.dead;
    try {
      this.w.postMessage(msg, transfer);
    } catch (e) {
      throw new NncError(`this call's arguments cannot be sent to the model's worker (${(e as Error)?.message ?? e}): inputs, weights and options must be plain data and typed arrays`);
    }
  }

  /** Posts a request (its id is filled in) and resolves with its reply. */
  request<T>(msg: WithoutId<Extract<Request, { id: number }>>, onEvent?: (e: StepEvent) => void): { id: number; done: Promise<T> } {
    const id = this.nextId++;
    const done = new Promise<T>((resolve, reject) => {
      this.post({ ...msg, id } as Request);
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject, ...(onEvent ? { onEvent } : {}) });
      this.idle();
    });
    return { id, done };
  }

  fail(e: Error): void {
    if (this.dead) return;
    this.dead = e;
    this.onAlive?.();
    this.onAlive = undefined;
    const all = [...this.waiting.values()];
    this.waiting.clear();
    for (const w of all) w.reject(e);
  }

  close(): void {
    this.fail(new NncError('the model was disposed'));
    void this.w.terminate();
  }
}

const channels = new WeakMap<object, Channel>();

/** The model as the app sees it: every call posted to the worker's model. */
class WorkerModel {
  readonly backend: NncModel<unknown, unknown>['backend'];
  readonly device: string;
  readonly manifest: ModelManifest;
  private readonly ch: Channel;
  /** The model's id in the worker (its create request's). */
  private readonly id: number;
  /** Whether nnc started the worker (worker: true), and so ends it on dispose. */
  private readonly own: boolean;
  private disposed = false;

  constructor(manifest: ModelManifest, ch: Channel, id: number, own: boolean, info: { backend: NncModel<unknown, unknown>['backend']; device: string }) {
    this.manifest = manifest;
    this.ch = ch;
    this.id = id;
    this.own = own;
    this.backend = info.backend;
    this.device = info.device;
  }

  private call<T>(op: Op, args: unknown[], extra: { aborted?: boolean } = {}, onEvent?: (e: StepEvent) => void): { id: number; done: Promise<T> } {
    if (this.disposed) throw new NncError(`this ${this.manifest.model} model was disposed`);
    return this.ch.request<T>({ t: 'call', model: this.id, op, args, ...extra }, onEvent);
  }

  /**
   * Posted to the worker; the promise settles when it has loaded them (later calls wait for it in any
   * case). A URL, Response, Blob or stream is read here first (progress and abort stay on this thread).
   */
  loadWeights(src: unknown, options?: LoadOptions): Promise<void> {
    const p = isWeightStream(src) ? readWeightStream(src, options).then((bytes) => this.postWeights(bytes, options)) : this.postWeights(src as WeightSource, options);
    p.catch(() => {}); // a caller who does not await still learns of it: the next call fails with it
    return p;
  }

  private postWeights(src: WeightSource, options: LoadOptions | undefined): Promise<void> {
    let args: unknown[];
    try {
      args = postableWeights(src, options);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.call<void>('loadWeights', args).done;
  }

  /** Training runs on the calling thread only (docs/training.md). */
  async vjp(): Promise<never> {
    throw new NncError(`vjp() does not run in a worker: create the ${this.manifest.model} model without the worker option to train it`);
  }
  saveWeights(): never {
    throw new NncError(`saveWeights() does not run in a worker: create the ${this.manifest.model} model without the worker option to train it`);
  }
  async forward(inputs: unknown): Promise<unknown> {
    return this.call('forward', [inputs]).done;
  }

  /** An AbortSignal cannot be posted: it stays here, and an abort is posted instead. */
  private static split(options: unknown): { opts: unknown; signal: AbortSignal | undefined } {
    const o = options as { signal?: unknown } | null | undefined;
    const s = o?.signal as AbortSignal | undefined;
    if (typeof o !== 'object' || o === null || !s || typeof s.addEventListener !== 'function' || typeof s.aborted !== 'boolean') return { opts: options, signal: undefined };
    const { signal: _, ...rest } = o as Record<string, unknown>;
    return { opts: rest, signal: s };
  }

  async generate(inputs: unknown, options?: GenerateOptions): Promise<GenerateResult> {
    const { opts, signal } = WorkerModel.split(options);
    const { id, done } = this.call<GenerateResult>('generate', [inputs, opts], { aborted: signal?.aborted === true });
    const abort = () => this.ch.post({ t: 'abort', id });
    signal?.addEventListener('abort', abort, { once: true });
    try {
      return await done;
    } finally {
      signal?.removeEventListener('abort', abort);
    }
  }

  async *stream(inputs: unknown, options?: GenerateOptions): AsyncGenerator<StepEvent, GenerateResult> {
    const { opts, signal } = WorkerModel.split(options);
    const queue: StepEvent[] = [];
    let wake: (() => void) | undefined;
    let settled = false;
    const { id, done } = this.call<GenerateResult>('stream', [inputs, opts], { aborted: signal?.aborted === true }, (e) => {
      queue.push(e);
      wake?.();
    });
    const finished = done.finally(() => {
      settled = true;
      wake?.();
    });
    finished.catch(() => {}); // read below; an early return() leaves it unread
    const abort = () => this.ch.post({ t: 'abort', id });
    signal?.addEventListener('abort', abort, { once: true });
    try {
      for (;;) {
        if (queue.length) {
          yield queue.shift()!;
          continue;
        }
        if (settled) return await done;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    } finally {
      signal?.removeEventListener('abort', abort);
      // the consumer stopped early (break, return()): stop the worker's decoding too
      if (!settled && !this.disposed) abort();
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.own) this.ch.close();
    else this.ch.post({ t: 'dispose', model: this.id });
  }
}

/** The URL of tsx's ESM register API (nnc depends on tsx), for a worker thread that must load .ts modules. */
async function tsxRegisterUrl(): Promise<string | undefined> {
  try {
    const [mod, fs, url] = await Promise.all(['node:module', 'node:fs', 'node:url'].map((s) => import(/* @vite-ignore */ s))) as [
      { createRequire(p: string): { resolve(id: string): string } },
      { readFileSync(p: string, e: 'utf8'): string },
      { pathToFileURL(p: string): URL },
    ];
    const pkg = mod.createRequire(import.meta.url).resolve('tsx/package.json');
    const api = (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { exports?: Record<string, { import?: { default?: string } | string }> }).exports?.['./esm/api']?.import;
    const rel = typeof api === 'string' ? api : api?.default;
    return rel ? new URL(rel, url.pathToFileURL(pkg)).href : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A worker thread's script (Node) for `worker: true`: registers tsx when a module is TypeScript, then
 * imports this file and the generated module and serves it.
 */
const NODE_BOOT = `
const { workerData: d } = require('node:worker_threads');
(async () => {
  if (d.tsx) (await import(d.tsx)).register();
  const [rt, m] = await Promise.all([import(d.runtime), import(d.module)]);
  rt.serve(m);
})().catch((e) => {
  const hint = e && e.code === 'ERR_UNKNOWN_FILE_EXTENSION' ? ' (a worker thread needs a TypeScript loader for a .ts module: install tsx, or compile the model with --format js)' : '';
  throw new Error('could not load ' + d.module + ' in a worker thread: ' + (e && e.message) + hint);
});
`;

/** Starts the worker for `worker: true`, which loads the generated module at `from`. */
async function startWorker(from: string | undefined, model: string): Promise<{ worker: Listenable; revoke?: () => void }> {
  const runtime = import.meta.url;
  const how = `pass a Worker whose script calls serve(): createModel({ worker: new Worker(new URL('./model.worker.ts', import.meta.url), { type: 'module' }) }), with model.worker.ts importing the generated module and calling serve(module) from nnc/runtime`;
  if (from === undefined) throw new NncError(`createModel({ worker: true }) needs a module generated by this nnc (its create function passes its own URL); recompile ${model}'s spec, or ${how}`);
  if (from === runtime) throw new NncError(`createModel({ worker: true }) cannot start a worker here: ${model}'s module and nnc's runtime are bundled into one file (${from}), which a worker cannot load on its own; ${how}`);
  if (isNode) {
    const spec = 'node:worker_threads';
    const { Worker } = (await import(/* @vite-ignore */ spec)) as { Worker: new (src: string, o: { eval: boolean; workerData: unknown }) => Listenable };
    const ts = [runtime, from].some((u) => /\.[cm]?ts$/.test(new URL(u).pathname));
    return { worker: new Worker(NODE_BOOT, { eval: true, workerData: { runtime, module: from, tsx: ts ? await tsxRegisterUrl() : undefined } }) };
  }
  const g = globalThis as { Worker?: new (url: string, o: { type: 'module' }) => Listenable };
  if (typeof g.Worker !== 'function') throw new NncError('createModel({ worker: true }): this JavaScript environment has no Web Workers');
  const src = `import { serve } from ${JSON.stringify(runtime)};\nimport * as m from ${JSON.stringify(from)};\nserve(m);\n`;
  const url = URL.createObjectURL(new Blob([src], { type: 'text/javascript' }));
  return { worker: new g.Worker(url, { type: 'module' }), revoke: () => URL.revokeObjectURL(url) };
}

/**
 * createModel with a `worker` option: the model is created in the worker (nnc's own for `true`, the
 * app's otherwise) and this thread gets a proxy with the same API. `from` is the generated module's URL.
 */
export async function createWorkerModel(manifest: ModelManifest, options: CreateOptions, from: string | undefined): Promise<AnyModel> {
  const { worker, gpu, ...rest } = options;
  if (gpu !== undefined && gpu !== null) throw new NncError(`createModel({ worker, gpu }): gpu.js cannot be sent to a worker; the worker loads it itself (install gpu.js), or its script passes it: serve(module, { gpu: GPU })`);
  const own = worker === true;
  let w: Listenable;
  let revoke: (() => void) | undefined;
  // checkOptions (CREATE_OPTIONS) let through only true or a Worker-like object here
  if (own) ({ worker: w, revoke } = await startWorker(from, manifest.model));
  else w = worker as Listenable;
  let ch = own ? undefined : channels.get(w);
  if (!ch) {
    ch = new Channel(w, own);
    if (!own) channels.set(w, ch);
  }
  if (revoke) ch.onAlive = revoke;
  const { id, done } = ch.request<{ backend: AnyModel['backend']; device: string }>({ t: 'create', manifest, options: rest });
  try {
    return new WorkerModel(manifest, ch, id, own, await done) as unknown as AnyModel;
  } catch (e) {
    if (own) ch.close();
    throw e;
  }
}
