/**
 * The front end and expansion (front.ts) over a spec on the disk: the files it names are read
 * relative to its folder. All that `nnc check`, `weights`, `torch` and `onnx` need of the compiler
 * (the CLI loads driver.ts, with the passes and the module emitter, for `nnc compile` alone).
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { lower as lowerWith, type CompileOptions } from './front.ts';
import type { SpecFiles } from './syntax/check.ts';

/** The files a spec names (vocabularies), read from the disk relative to the spec's folder. */
export function specFiles(file: string): SpecFiles {
  return {
    read(path) {
      try {
        return readFileSync(isAbsolute(path) ? path : join(dirname(file), path), 'utf8');
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new Error(code === 'ENOENT' ? `no such file (looked for ${join(dirname(file), path)})` : code === 'EISDIR' ? 'it is a folder' : (e as Error).message);
      }
    },
  };
}

/** The front end and expansion (front.ts), reading the files the spec names from the disk unless `options.files` says otherwise. */
export function lower(text: string, file: string, options: CompileOptions = {}): ReturnType<typeof lowerWith> {
  return lowerWith(text, file, { ...options, files: options.files ?? specFiles(file) });
}
