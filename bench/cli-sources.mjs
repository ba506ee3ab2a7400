// The `nnc` command as bin/nnc.js ran it before the package build: the TypeScript sources through
// tsx's loader, transpiled at every start (the "before" of bench/cli.ts).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli.ts');
process.exitCode = await main(process.argv.slice(2));
