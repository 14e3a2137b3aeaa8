// Writes schema/cluster.schema.json from the zod schema of cluster files (run after `npm run build`).
// test/unit/cluster-file.test.ts fails when the committed file and the schema differ.
import {writeFileSync} from 'node:fs'
import path from 'node:path'
import {clusterJsonSchema} from '../dist/src/services/cluster-file.js'

const out = path.join(import.meta.dirname, '..', 'schema', 'cluster.schema.json')
writeFileSync(out, JSON.stringify(clusterJsonSchema(), null, 2) + '\n')
console.log(`wrote ${out}`)
