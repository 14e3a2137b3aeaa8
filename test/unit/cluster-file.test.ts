import {readFileSync} from 'node:fs'
import path from 'node:path'
import {Ajv2020} from 'ajv/dist/2020.js'
import {parse} from 'yaml'
import {describe, expect, it} from 'vitest'
import {ClusterFileError, clusterFileSchema, clusterJsonSchema, indexIn, nameAt, parseClusterFile} from '../../src/services/cluster-file.js'

const root = path.resolve(import.meta.dirname, '../..')

/** The one-line problems of a file, or [] when it is valid. */
function problems(text: string): string[] {
  try {
    parseClusterFile(text, 'c.yaml')
    return []
  } catch (e) {
    expect(e).toBeInstanceOf(ClusterFileError)
    expect((e as ClusterFileError).exit).toBe(2)
    return (e as ClusterFileError).problems
  }
}

const base = `cluster: demo
driver: local
groups:
  - name: managers
    role: manager
    count: 3
  - name: web
    role: worker
    count: 4
    labels:
      tier: web
`

describe('cluster files', () => {
  it('the committed JSON Schema is the one generated from the zod schema (node scripts/cluster-schema.mjs)', () => {
    const committed = JSON.parse(readFileSync(path.join(root, 'schema/cluster.schema.json'), 'utf8'))
    expect(committed).toEqual(JSON.parse(JSON.stringify(clusterJsonSchema())))
  })

  it('an editor validating with the JSON Schema agrees with the zod schema, document by document', () => {
    const validate = new Ajv2020({strict: false}).compile(JSON.parse(readFileSync(path.join(root, 'schema/cluster.schema.json'), 'utf8')))
    const docs = [
      base,
      readFileSync(path.join(root, 'examples/cluster.yaml'), 'utf8'),
      base.replace('count: 4', 'count: four'),
      base.replace('count: 4', 'count: -1'),
      base.replace('role: worker', 'role: boss'),
      base + 'colour: red\n',
      base + 'swarm:\n  managers: 3\n  ingress: false\n',
      base + 'swarm:\n  managers: 3\n  bogus: 1\n',
      base + 'engine:\n  labels: {a: b}\n  options: {log-level: warn, debug: true, dns: [1.1.1.1, 8.8.8.8]}\n',
      base + 'engine:\n  labels: {"a b": c}\n',
      base.replace('    labels:\n      tier: web\n', '    names: web-{n:2}\n'),
      base.replace('    labels:\n      tier: web\n', '    names: web\n'),
      'cluster: demo\ndriver: local\ngroups: []\n',
    ]
    for (const d of docs) {
      const data = parse(d)
      expect(validate(data), d).toBe(clusterFileSchema.safeParse(data).success)
    }
  })

  it('the README example file is valid and resolves groups to host names', () => {
    const spec = parseClusterFile(readFileSync(path.join(root, 'examples/cluster.yaml'), 'utf8'), 'examples/cluster.yaml')
    expect(spec.groups.map((g) => g.hosts)).toEqual([['mgr1', 'mgr2', 'mgr3'], ['web1', 'web2', 'web3', 'web4']])
    expect(spec.swarm.managers).toBe(3)
    expect(spec.engine.labels).toEqual(['env=demo'])
    expect(spec.engine.opts).toEqual(['log-level=warn'])
    expect(spec.groups[1]!.driverOptions).toEqual({subnet: '10.230.0.0/16'})
  })

  it('defaults: names <group>{n}, managers from the manager groups, engine settings empty', () => {
    const spec = parseClusterFile(base, 'c.yaml')
    expect(spec.groups[0]!.hosts).toEqual(['managers1', 'managers2', 'managers3'])
    expect(spec.groups[1]!.labels).toEqual({tier: 'web'})
    expect(spec.swarm.managers).toBe(3)
    expect(spec.engine).toEqual({labels: [], opts: [], insecureRegistries: [], registryMirrors: []})
  })

  it('names patterns pad and match only their own names', () => {
    expect(nameAt('web-{n:3}', 7)).toBe('web-007')
    expect(indexIn('web-{n:3}', 'web-007')).toBe(7)
    expect(indexIn('web-{n:3}', 'web-7')).toBeUndefined()
    expect(indexIn('web{n}', 'web12')).toBe(12)
    expect(indexIn('web{n}', 'web0')).toBeUndefined()
    expect(indexIn('web{n}', 'webx')).toBeUndefined()
  })

  it('each problem is one line with file:line:col and the field', () => {
    const p = problems(`cluster: demo
driver: local
groups:
  - name: web
    role: worker
    count: four
    colour: red
  - name: m
    role: manager
`)
    expect(p).toEqual([
      'c.yaml:6:12: groups[0].count: Invalid input: expected number, received string',
      'c.yaml:7:5: groups[0].colour: unknown field',
      'c.yaml:8:5: groups[1].count: required',
    ])
  })

  it('refuses secrets, unknown driver options, even or too many managers, a managers count that disagrees, and clashing names', () => {
    expect(problems(base.replace('driver: local', 'driver: local\ndriverOptions:\n  bogus: 1'))).toEqual([expect.stringMatching(/^c\.yaml:4:3: driverOptions\.bogus: local has no option 'bogus'/)])
    expect(problems(base.replace('driver: local', 'driver: digitalocean\ndriverOptions:\n  access-token: x'))).toEqual([expect.stringMatching(/^c\.yaml:4:3: driverOptions\.access-token: 'access-token' is a secret .* DIGITALOCEAN_ACCESS_TOKEN/)])
    expect(problems(base.replace('count: 3', 'count: 2'))).toEqual([expect.stringMatching(/^c\.yaml:4:3: groups: the manager groups add up to 2/)])
    expect(problems(base + 'swarm:\n  managers: 5\n')).toEqual([expect.stringMatching(/^c\.yaml:13:13: swarm\.managers: is 5 but the manager groups add up to 3/)])
    expect(problems(base.replace('role: manager', 'role: worker'))).toEqual([expect.stringMatching(/groups: no manager/)])
    expect(problems(base.replace('name: web', 'name: managers'))).toEqual([expect.stringMatching(/^c\.yaml:7:11: groups\[1\]\.name: group 'managers' is already defined/), expect.stringMatching(/also a host of group managers/)])
    expect(problems(base.replace('name: web', 'name: w\n    names: managers{n}'))).toEqual(expect.arrayContaining([expect.stringMatching(/groups\[1\]\.names: host managers1 is also a host of group managers/)]))
  })

  it('refuses YAML syntax errors, a wrong top level, a bad cluster name and an unknown driver, one line each', () => {
    expect(problems('a: [\n')).toEqual([expect.stringMatching(/^c\.yaml:\d+:\d+: /)])
    expect(problems('- 1\n')).toEqual(['c.yaml:1:1: (top): a cluster file is a mapping with cluster, driver and groups'])
    const p = problems('cluster: Demo\ndriver: local\n')
    expect(p).toEqual(["c.yaml:1:10: cluster: 'Demo' has upper-case letters; cluster names are lower case: demo", 'c.yaml:1:1: groups: required'])
    expect(problems(base.replace('driver: local', 'driver: nope'))).toEqual([expect.stringMatching(/^c\.yaml:2:9: driver: no driver 'nope': choose one of local, /)])
    expect(p.every((l) => !l.includes('\n'))).toBe(true)
  })
})
