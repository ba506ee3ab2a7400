/**
 * `nnc compile --watch`: compiles once, then again each time the file is saved, until interrupted
 * (Ctrl-C: exit 0). It watches the file's directory, not the file, so that editors that save by
 * writing a new file and renaming it over the old one are seen too; bursts of events within 50 ms
 * are one save. A compiler failure is reported and watching goes on.
 */
import { watch as watchDir } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

export async function watch(file: string, build: () => Promise<number>, internalError: (e: unknown) => number): Promise<number> {
  const once = async (): Promise<void> => {
    try {
      await build();
    } catch (e) {
      internalError(e);
    }
  };
  await once();
  process.stderr.write(`nnc: watching ${file} (Ctrl-C to stop)\n`);
  const name = basename(file);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const watcher = watchDir(dirname(resolve(file)), (_event, changed) => {
    if (changed !== null && changed !== name) return;
    clearTimeout(timer);
    timer = setTimeout(() => void once(), 50);
  });
  return new Promise((done) => {
    const stop = (): void => {
      clearTimeout(timer);
      watcher.close();
      done(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
