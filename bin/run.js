#!/usr/bin/env node
// The `belt` entry point. Errors are rendered by BaseCommand.catch; failures before a command runs
// (a broken install) are bugs and keep their stack.
const major = Number(process.versions.node.split('.')[0])
if (major < 22) {
  process.stderr.write(
    `Error: belt needs Node.js 22 or later, and this is Node.js ${process.versions.node}. ` +
      'Install Node 22 LTS (e.g. npm install -g --prefix /usr/local node@22) and put it first in PATH.\n',
  )
  process.exit(5)
}
const {execute} = await import('@oclif/core')
await execute({dir: import.meta.url})
