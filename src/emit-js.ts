/**
 * `nnc compile --format js`: the generated TypeScript module as JavaScript (types erased; it still
 * imports `nnc/runtime`) plus its declarations, for apps without a TypeScript loader. `-o x.js` or
 * `x.mjs` writes an ES module (+ `.d.ts` / `.d.mts`), `-o x.cjs` a CommonJS one (+ `.d.cts`). The
 * runtime it imports is the package's build (package.json "exports": dist/runtime.js for import,
 * dist/cjs/runtime.js for require).
 */
import { Project, ts } from 'ts-morph';

/** TypeScript → JavaScript: types erased, as an ES module or (`commonjs`) a CommonJS one. */
export function transpile(source: string, fileName: string, commonjs: boolean): string {
  return ts.transpileModule(source, {
    fileName,
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: commonjs ? ts.ModuleKind.CommonJS : ts.ModuleKind.ESNext, verbatimModuleSyntax: false, sourceMap: false },
  }).outputText;
}

/** The declarations file that goes with a .js / .mjs / .cjs module. */
export function declarationsPath(jsPath: string): string {
  return jsPath.replace(/\.([mc]?)js$/, '.d.$1ts');
}

export function emitJs(source: string, jsName: string): { js: string; dts: string } {
  const tsName = jsName.replace(/\.([mc]?)js$/, '.$1ts');
  const commonjs = jsName.endsWith('.cjs');
  // a generated module passes its own location to the runtime (import.meta.url), which CommonJS spells differently
  const js = commonjs ? transpile(source, tsName, true).replaceAll('import.meta.url', 'require("node:url").pathToFileURL(__filename).href') : transpile(source, tsName, false);
  const project = new Project({
    useInMemoryFileSystem: true,
    compilerOptions: { declaration: true, emitDeclarationOnly: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler, strict: true, skipLibCheck: true, noLib: true },
  });
  project.createSourceFile(tsName, source);
  const dts = project.emitToMemory({ emitOnlyDtsFiles: true }).getFiles().find((f) => /\.d\.[mc]?ts$/.test(f.filePath))?.text;
  if (dts === undefined) throw new Error(`no declarations were emitted for ${tsName}`);
  return { js, dts };
}
