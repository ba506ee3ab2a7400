/** Optional packages a backend needs (gpu.js, onnxruntime-node), loaded only when that backend is asked for. */
import { isNode } from './host.ts';

function notFound(e: unknown): boolean {
  const code = String((e as { code?: unknown } | null)?.code ?? '');
  return /^(ERR_MODULE_NOT_FOUND|MODULE_NOT_FOUND)$/.test(code) || /resolve module specifier|Cannot find (module|package)/i.test(String((e as Error)?.message ?? e));
}

/**
 * Package `spec`, imported from nnc's own location, then (Node) required from `from` — a generated
 * module's URL, so that an app's own install is found. `check` says why a loaded module is not the
 * package wanted (undefined: it is). Returns the module, or what went wrong besides "not installed".
 */
export async function importOptional(spec: string, from: string | undefined, check: (m: unknown) => string | undefined): Promise<{ module?: unknown; problems: string[] }> {
  const problems: string[] = [];
  const attempt = async (load: () => Promise<unknown>): Promise<unknown> => {
    try {
      const m = await load();
      const why = check(m);
      if (why) problems.push(`'${spec}' loaded but ${why}`);
      return why ? undefined : m;
    } catch (e) {
      if (!notFound(e)) problems.push(String((e as Error)?.message ?? e));
      return undefined;
    }
  };
  const own = await attempt(() => import(/* @vite-ignore */ spec));
  if (own) return { module: own, problems };
  if (isNode && from !== undefined && /^file:/.test(from)) {
    const app = await attempt(async () => {
      const nodeModule = 'node:module';
      const { createRequire } = (await import(/* @vite-ignore */ nodeModule)) as { createRequire(p: string): (id: string) => unknown };
      return createRequire(from)(spec);
    });
    if (app) return { module: app, problems };
  }
  return { problems };
}
