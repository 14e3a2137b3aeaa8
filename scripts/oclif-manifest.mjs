// Writes oclif.manifest.json (run by `npm run build`, after tsc). With the manifest, oclif knows
// every command's id, flags and help without importing the command files: `belt ip` loads ip.js
// and nothing else of dist/src/commands; without it, every command module (and all they import)
// is loaded on each start to list the commands. This does what `oclif manifest` (the `oclif`
// package, heavy for one command) does with @oclif/core alone: load the plugin ignoring any old
// manifest, failing on any command that does not load, and write the result.
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {Plugin} from '@oclif/core'

const root = join(import.meta.dirname, '..')
const plugin = new Plugin({root, type: 'core', isRoot: true, ignoreManifest: true, errorOnManifestCreate: true, respectNoCacheDefault: true})
await plugin.load()
const count = Object.keys(plugin.manifest.commands).length
if (count === 0) throw new Error(`no commands found under ${plugin.pjson.oclif.commands}: build first (tsc)`)
writeFileSync(join(root, 'oclif.manifest.json'), JSON.stringify(plugin.manifest, null, 2) + '\n')
