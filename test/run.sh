#!/usr/bin/env bash
# `npm test`: type-check everything (generated/ included), then the vitest suite. Runs itself under
# xvfb-run when there is no display and xvfb-run exists, so the headless-gl backend is tested too.
# Progress: vitest's default reporter prints one line per test file as it finishes ("✓ test/x.test.ts
# (N tests) 1234ms", failures expanded), on a terminal and in a log alike; each stage prints its time.
# Ends with one plain summary line: "tests: N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ -z "${DISPLAY:-}" && -z "${NNC_UNDER_XVFB:-}" ]] && command -v xvfb-run >/dev/null; then
  exec env NNC_UNDER_XVFB=1 xvfb-run -a bash "$0" "$@"
fi
T0=$SECONDS
echo "== typecheck (tsc --noEmit, strict; src, test, generated)"
npx tsc -p tsconfig.json
echo "== typecheck done in $((SECONDS - T0)) s"
echo "== vitest (one line per finished test file)"
mkdir -p test/.out
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=test/.out/results.json "$@" || status=$?
echo "== npm test took $((SECONDS - T0)) s"
node -e '
  const r = JSON.parse(require("fs").readFileSync("test/.out/results.json", "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
' || true
exit $status
