import {describe, expect, it} from 'vitest'
import {maskedCommandLine, reproduceCommand, type FlagShape} from '../../src/ui/command-line.js'

const shapes: Record<string, FlagShape> = {
  store: {type: 'option'},
  driver: {type: 'option'},
  count: {type: 'option'},
  prefix: {type: 'option', default: 'node'},
  cluster: {type: 'option', default: 'default'},
  swarm: {type: 'boolean'},
  bootstrap: {type: 'boolean', default: true, allowNo: true},
  'engine-label': {type: 'option', multiple: true},
  'digitalocean-region': {type: 'option'},
  'digitalocean-access-token': {type: 'option'},
  json: {type: 'boolean'},
}

describe('reproduceCommand (the retry and finish-the-batch lines)', () => {
  it.each([
    ['the driver, its non-secret options, cluster, engine and swarm flags are kept', {driver: 'digitalocean', cluster: 'prod', 'digitalocean-region': 'fra1', 'engine-label': ['tier=web', 'zone=a'], swarm: true, bootstrap: true, prefix: 'node'}, {}, ['n1', 'n2'], "belt create --driver digitalocean --cluster prod --swarm --engine-label tier=web --engine-label zone=a --digitalocean-region fra1 n1 n2"],
    ['secrets are never written; defaults are left out', {driver: 'digitalocean', 'digitalocean-access-token': 'dop_v1_secret', cluster: 'default', prefix: 'node', bootstrap: true}, {secret: new Set(['digitalocean-access-token'])}, ['n1'], 'belt create --driver digitalocean n1'],
    ['--no-bootstrap and --store come back; count/prefix are omitted when names are given', {driver: 'local', store: '/tmp/my store', bootstrap: false, count: 4, prefix: 'web'}, {omit: new Set(['count', 'prefix'])}, ['web3'], "belt create --store '/tmp/my store' --driver local --no-bootstrap web3"],
    ['a count batch keeps --count and --prefix', {driver: 'local', count: 4, prefix: 'web', bootstrap: true, json: true}, {}, [], 'belt create --driver local --count 4 --prefix web'],
    ['patterns are quoted for the shell', {driver: 'local', bootstrap: true}, {}, ['node[1:3]'], "belt create --driver local 'node[1:3]'"],
  ])('%s', (_what, flags, o, args, want) => {
    expect(reproduceCommand(['create'], flags, shapes, {...o, args})).toBe(want)
  })
})

describe('maskedCommandLine (the run record\'s command)', () => {
  it('masks a secret driver option in both spellings and keeps everything else', () => {
    const options = [{name: 'access-token', secret: true}, {name: 'region'}]
    expect(maskedCommandLine('create', ['--driver', 'digitalocean', '--digitalocean-access-token', 'dop_v1_x', '--digitalocean-access-token=dop_v1_y', '--digitalocean-region', 'ams3', '--count', '3'], 'digitalocean', options)).toBe(
      'belt create --driver digitalocean --digitalocean-access-token *** --digitalocean-access-token=*** --digitalocean-region ams3 --count 3',
    )
    expect(maskedCommandLine('swarm:init', ['--managers', '3'], 'local', [])).toBe('belt swarm init --managers 3')
  })
})
