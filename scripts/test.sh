#!/usr/bin/env bash
# The test command: set up (idempotent), then the whole vitest suite (unit + integration against
# real namespaces, sshd and dockerd). Prints vitest's summary and a closing "N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="/usr/local/bin:$PATH"
mkdir -p .belt-test
set +e
npx vitest run --reporter=default --reporter=json --outputFile.json=.belt-test/vitest.json "$@"
rc=$?
set -e
node -e '
  const r = JSON.parse(require("fs").readFileSync(".belt-test/vitest.json", "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`vitest: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
' || true
exit $rc
