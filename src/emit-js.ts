/**
 * `nnc compile --format js`: the generated TypeScript module as JavaScript (types erased; it still
 * imports `nnc/runtime`) plus its declarations (.d.ts), for apps without a TypeScript loader. Plain
 * Node then loads nnc's runtime compiled to dist/runtime/ (see build-runtime.ts), which the CLI
 * builds when it is missing or older than the sources.
 */
import { Project, ts } from 'ts-morph';
import { buildRuntime, runtimeBuilt, transpile } from './build-runtime.ts';

export function emitJs(source: string, jsName: string): { js: string; dts: string } {
  const tsName = jsName.replace(/\.(m?)js$/, '.$1ts');
  const js = transpile(source, tsName);
  const project = new Project({
    useInMemoryFileSystem: true,
    compilerOptions: { declaration: true, emitDeclarationOnly: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler, strict: true, skipLibCheck: true, noLib: true },
  });
  project.createSourceFile(tsName, source);
  const dts = project.emitToMemory({ emitOnlyDtsFiles: true }).getFiles().find((f) => /\.d\.m?ts$/.test(f.filePath))?.text;
  if (dts === undefined) throw new Error(`no declarations were emitted for ${tsName}`);
  return { js, dts };
}

/** Builds dist/runtime/ if it is missing or stale; returns a warning when that is not possible. */
export function ensureRuntimeJs(): string | undefined {
  if (runtimeBuilt()) return undefined;
  try {
    buildRuntime();
    return undefined;
  } catch (e) {
    return `could not compile nnc's runtime for plain Node (${(e as Error).message}); run 'npm run build' in the nnc package`;
  }
}
