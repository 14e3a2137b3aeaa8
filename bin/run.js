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
// Start-up time (README "Benchmarks"): V8 keeps the compiled code of every module loaded from here on
// in a cache on disk (os.tmpdir()/node-compile-cache, keyed by file contents; a cache it cannot
// write is skipped), so later starts skip parsing and compiling; and @oclif/core's own check of
// the Node version, which loads all of semver on import, is skipped: the check above is stricter.
const {enableCompileCache} = await import('node:module')
enableCompileCache?.()
// `belt --version`, and the plain forms of `belt ip` and `belt env`, run without loading oclif
// (dist/src/fast-path.js says which forms, and prints and exits exactly as the oclif commands do).
const {fileURLToPath} = await import('node:url')
const {runFastPath} = await import('../dist/src/fast-path.js')
if (!(await runFastPath(process.argv.slice(2), fileURLToPath(new URL('..', import.meta.url))))) {
  const engineWarning = process.env.OCLIF_DISABLE_ENGINE_WARNING
  process.env.OCLIF_DISABLE_ENGINE_WARNING = '1'
  const {execute} = await import('@oclif/core')
  if (engineWarning === undefined) delete process.env.OCLIF_DISABLE_ENGINE_WARNING
  else process.env.OCLIF_DISABLE_ENGINE_WARNING = engineWarning
  await execute({dir: import.meta.url})
}
