/**
 * Browser test harness: runs bundled TypeScript in Debian's Chromium, headless,
 * with software WebGL2 (ANGLE on SwiftShader) and software WebGPU (Dawn on
 * SwiftShader Vulkan).
 *
 *   const js = await bundleForBrowser('test/browser/gpujs.page.ts');
 *   const out = await withBrowser((page) => runInPage(page, js, 'probe', { backend: 'webgl2' }));
 *
 * Pages are served from a throw-away node:http server on 127.0.0.1 (random
 * port) with COOP/COEP headers, so `crossOriginIsolated` is true and
 * SharedArrayBuffer / wasm threads are available. Browser, profile dir and
 * server are always cleaned up.
 *
 * Nothing here skips: if Chromium or playwright-core is missing the call throws
 * with a message saying what to install (see .ci/run and docs/backends.md).
 */
import { createServer, type Server } from 'node:http';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export type { Page } from 'playwright-core';

/** Override with NNC_CHROMIUM=/path/to/chrome. */
export const CHROMIUM_PATH = process.env.NNC_CHROMIUM ?? '/usr/bin/chromium';

/** Flags that give headless Chromium software WebGL2 and WebGPU without a GPU or X server. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--enable-unsafe-swiftshader',
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--use-angle=swiftshader',
];

const INDEX_HTML =
  '<!doctype html><html><head><meta charset="utf-8"><title>nnc browser test</title></head><body></body></html>';

/** Headers on every response: cross-origin isolation for SharedArrayBuffer / wasm threads. */
const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};

/** In-memory static file server: path -> content. */
class StaticServer {
  readonly files = new Map<string, { body: string | Uint8Array; type: string }>();
  private server: Server | null = null;
  origin = '';

  async start(): Promise<void> {
    this.files.set('/', { body: INDEX_HTML, type: 'text/html; charset=utf-8' });
    this.files.set('/index.html', { body: INDEX_HTML, type: 'text/html; charset=utf-8' });
    this.server = createServer((req, res) => {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      if (path === '/favicon.ico') {
        res.writeHead(204, ISOLATION_HEADERS);
        res.end();
        return;
      }
      const file = this.files.get(path);
      if (!file) {
        res.writeHead(404, { ...ISOLATION_HEADERS, 'Content-Type': 'text/plain' });
        res.end(`not found: ${path}`);
        return;
      }
      res.writeHead(200, { ...ISOLATION_HEADERS, 'Content-Type': file.type });
      res.end(file.body);
    });
    await new Promise<void>((ok, fail) => {
      this.server!.once('error', fail);
      this.server!.listen(0, '127.0.0.1', () => ok());
    });
    const { port } = this.server.address() as AddressInfo;
    this.origin = `http://127.0.0.1:${port}`;
  }

  /** Serves `body` under a content-addressed path and returns that path. */
  addScript(body: string): string {
    const hash = createHash('sha256').update(body).digest('hex').slice(0, 16);
    const path = `/bundle-${hash}.js`;
    this.files.set(path, { body, type: 'text/javascript; charset=utf-8' });
    return path;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((ok) => server.close(() => ok()));
  }
}

interface PageState {
  server: StaticServer;
  log: string[];
}
const pageState = new WeakMap<Page, PageState>();

/**
 * Bundles a TypeScript/JavaScript entry (and everything it imports, gpu.js
 * included) into one ESM file for the browser. Returns the JS source.
 *
 * gpu.js resolves to its browser build (`dist/gpu-browser.js`) through the
 * package's `browser` field — its Node entry needs `gl`, `webgpu` (Dawn) and
 * worker_threads and does not bundle for the browser.
 */
export async function bundleForBrowser(entryFile: string): Promise<string> {
  const result = await build({
    entryPoints: [resolve(entryFile)],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
    sourcemap: false,
    legalComments: 'none',
    // nnc/runtime from its TypeScript source (package.json "exports", condition nnc-source), not dist/
    conditions: ['nnc-source'],
  }).catch((err: { errors?: { text: string; location?: { file: string; line: number } | null }[] }) => {
    const msgs = (err.errors ?? []).map(
      (e) => `${e.location ? `${e.location.file}:${e.location.line}: ` : ''}${e.text}`,
    );
    throw new Error(`bundleForBrowser(${entryFile}) failed:\n${msgs.join('\n') || String(err)}`);
  });
  const out = result.outputFiles?.[0];
  if (!out) throw new Error(`bundleForBrowser(${entryFile}): esbuild produced no output`);
  return out.text;
}

/** The web example (examples/web), whose own dependency is Vite. */
export const WEB_EXAMPLE = resolve(new URL('../../examples/web', import.meta.url).pathname);

/** The path of Vite's CLI, installing examples/web's dependencies first when they are missing (.ci/run installs them up front). */
export function ensureVite(): string {
  const bin = join(WEB_EXAMPLE, 'node_modules/vite/bin/vite.js');
  if (!existsSync(bin)) {
    const lock = existsSync(join(WEB_EXAMPLE, 'package-lock.json'));
    const r = spawnSync('npm', [lock ? 'ci' : 'install', '--no-audit', '--no-fund', '--prefix', WEB_EXAMPLE], { encoding: 'utf8', timeout: 240_000 });
    if (r.status !== 0 || !existsSync(bin)) throw new Error(`npm could not install examples/web's dependencies (vite):\n${r.stdout ?? ''}${r.stderr ?? ''}`);
  }
  return bin;
}

/** `vite build` of the web example into `outDir` (installing Vite first when it is missing); returns Vite's log. */
export function buildWebExample(outDir: string): string {
  const vite = ensureVite();
  const r = spawnSync(process.execPath, [vite, 'build', '--outDir', outDir, '--emptyOutDir', '--logLevel', 'warn'], { cwd: WEB_EXAMPLE, encoding: 'utf8', timeout: 240_000 });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.status !== 0) throw new Error(`vite build of ${WEB_EXAMPLE} failed (${r.error?.message ?? `exit ${r.status}`}):\n${out}`);
  return out;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
};

/** Serves a directory (a built web example) on 127.0.0.1 with the cross-origin isolation headers, as a static host would. */
export async function serveDirectory(dir: string): Promise<{ origin: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = normalize(join(dir, path === '/' ? 'index.html' : path));
    if (!file.startsWith(dir)) {
      res.writeHead(403, ISOLATION_HEADERS).end();
      return;
    }
    readFile(file).then(
      (body) => res.writeHead(200, { ...ISOLATION_HEADERS, 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(body),
      () => res.writeHead(404, { ...ISOLATION_HEADERS, 'Content-Type': 'text/plain' }).end(`not found: ${path}`),
    );
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok());
  });
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}

/**
 * Bundles an entry the way a Vite app does (Vite's resolver, its browser conditions, gpu.js's
 * `browser` field) into one ES module, with its exports kept (library mode), for runInPage.
 * `nnc/runtime` is aliased to the TypeScript source package.json's exports name (condition
 * nnc-source), as examples/web/vite.config.mjs does (inside this repository nnc is in no node_modules).
 */
export async function bundleWithVite(entryFile: string): Promise<string> {
  ensureVite();
  const vite = (await import(pathToFileURL(join(WEB_EXAMPLE, 'node_modules/vite/dist/node/index.js')).href)) as {
    build(config: Record<string, unknown>): Promise<{ output: { type: string; code?: string; isEntry?: boolean }[] } | { output: { type: string; code?: string; isEntry?: boolean }[] }[]>;
  };
  const root = resolve(new URL('../..', import.meta.url).pathname);
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, string | Record<string, string>> };
  const entry = pkg.exports['./runtime']!;
  const runtime = resolve(root, typeof entry === 'string' ? entry : entry['nnc-source']!);
  const result = await vite.build({
    configFile: false,
    root,
    logLevel: 'silent',
    resolve: { alias: [{ find: /^nnc\/runtime$/, replacement: runtime }] },
    build: { write: false, target: 'es2022', lib: { entry: resolve(entryFile), formats: ['es'], fileName: () => 'page.js' }, rollupOptions: { output: { inlineDynamicImports: true } } },
  });
  const outputs = (Array.isArray(result) ? result : [result]).flatMap((r) => r.output);
  const chunks = outputs.filter((o) => o.type === 'chunk');
  if (chunks.length !== 1 || !chunks[0]!.code) throw new Error(`bundleWithVite(${entryFile}): expected one chunk, got ${chunks.length}`);
  return chunks[0]!.code;
}

export interface BrowserOptions {
  /** Extra Chromium flags, appended to CHROMIUM_ARGS. */
  extraArgs?: string[];
  /** Forward page console output to the Node console as it happens (default: only on failure). */
  echoConsole?: boolean;
}

/**
 * Launches Chromium (fresh temporary profile), opens a cross-origin-isolated
 * page on a local server and runs `fn(page)`. Always closes browser and server
 * and removes the profile, also when `fn` throws.
 */
export async function withBrowser<T>(fn: (page: Page) => Promise<T>, options: BrowserOptions = {}): Promise<T> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM_PATH}: the browser tests need Debian's chromium ` +
        `(apt-get install chromium, as .ci/run does) or NNC_CHROMIUM=/path/to/chrome.`,
    );
  }
  const server = new StaticServer();
  const profile = await mkdtemp(join(tmpdir(), 'nnc-chromium-'));
  let context: BrowserContext | null = null;
  const log: string[] = [];
  try {
    await server.start();
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [...CHROMIUM_ARGS, ...(options.extraArgs ?? [])],
      timeout: 60_000,
    });
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => {
      const line = `[console.${m.type()}] ${m.text()}`;
      log.push(line);
      if (options.echoConsole) console.log(line);
    });
    page.on('pageerror', (e) => {
      const line = `[pageerror] ${e.stack ?? e.message}`;
      log.push(line);
      if (options.echoConsole) console.log(line);
    });
    await page.goto(`${server.origin}/index.html`);
    pageState.set(page, { server, log });
    return await fn(page);
  } finally {
    await context?.close().catch(() => {});
    await server.stop().catch(() => {});
    await rm(profile, { recursive: true, force: true }).catch(() => {});
  }
}

/** Page side of runInPage, as plain JavaScript source. */
const PAGE_CALL = `async ({ url, exportName, arg }) => {
  const plain = (v) => {
    if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v);
    if (Array.isArray(v)) return v.map(plain);
    if (v && typeof v === 'object') {
      const o = {};
      for (const [k, x] of Object.entries(v)) o[k] = plain(x);
      return o;
    }
    return v;
  };
  try {
    const mod = await import(url);
    if (typeof mod[exportName] !== 'function') {
      return { ok: false, error: 'bundle has no exported function ' + exportName + ' (exports: ' + Object.keys(mod).join(', ') + ')' };
    }
    return { ok: true, value: plain(await mod[exportName](arg)) };
  } catch (e) {
    return { ok: false, error: (e && e.stack) || String(e) };
  }
}`;

/**
 * Serves `js` (e.g. a bundled worker script) from the page's server and returns its URL, same-origin
 * with the page: `new Worker(url, { type: 'module' })` in the page loads it.
 */
export function serveScript(page: Page, js: string): string {
  const state = pageState.get(page);
  if (!state) throw new Error('serveScript: page was not opened by withBrowser()');
  return state.server.origin + state.server.addScript(js);
}

/** Serves `body` at `path` (e.g. a .wasm file a library fetches) from the page's server and returns its URL. */
export function serveFile(page: Page, path: string, body: string | Uint8Array, type: string): string {
  const state = pageState.get(page);
  if (!state) throw new Error('serveFile: page was not opened by withBrowser()');
  state.server.files.set(path, { body, type });
  return state.server.origin + path;
}

/** Console lines and uncaught page errors seen so far (for diagnostics). */
export function pageLog(page: Page): string[] {
  return pageState.get(page)?.log.slice() ?? [];
}

/**
 * Loads `bundleJs` as an ES module in the page (served same-origin) and
 * returns `await module[exportName](arg)`. `arg` must be JSON-serialisable.
 * Typed arrays in the result become plain arrays; NaN, ±Infinity and -0
 * survive (Playwright's serialisation). A throw in the page rejects here with
 * the page-side stack and the recent console output.
 */
export async function runInPage<R = unknown>(
  page: Page,
  bundleJs: string,
  exportName: string,
  arg?: unknown,
): Promise<R> {
  const state = pageState.get(page);
  if (!state) throw new Error('runInPage: page was not opened by withBrowser()');
  const url = state.server.addScript(bundleJs);
  // Passed as source text, not a function: test runners (tsx, vitest) transform
  // TS with esbuild keepNames, and a serialised function would then call an
  // `__name` helper that does not exist in the page.
  const call = `(${PAGE_CALL})(${JSON.stringify({ url, exportName, arg: arg ?? null })})`;
  const outcome = (await page.evaluate(call)) as { ok: true; value: unknown } | { ok: false; error: string };
  if (!outcome.ok) {
    const tail = state.log.slice(-20).join('\n');
    throw new Error(`in page, ${exportName}() threw:\n${outcome.error}${tail ? `\n--- page console ---\n${tail}` : ''}`);
  }
  return outcome.value as R;
}
