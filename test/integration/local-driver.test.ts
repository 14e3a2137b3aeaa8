import {execFileSync} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {afterAll} from 'vitest'
import {createLocalDriver} from '../../drivers/local/index.js'
import {describeDriverConformance} from '../../drivers/testing/conformance.js'
import {generateSshKeyPair} from '../../src/ssh/keys.js'
import {driverContext} from '../../src/services/driver-context.js'
import {Store} from '../../src/store/store.js'
import {silentReporter} from '../../src/ui/reporter.js'

// A subnet of its own so this suite never meets other tests' or a user's hosts.
const SUBNET = '10.218.0.0/16'
// Under the home directory, like the default store (~/.belt): hosts bind-mount a fresh /root and
// /home over it, which once hid the host directory from its own init script.
const dir = mkdtempSync(path.join(os.homedir(), '.belt-local-conf-'))
const store = new Store(path.join(dir, 'store'))
await store.init()
const context = await driverContext(store, 'local', silentReporter)
afterAll(() => rmSync(dir, {recursive: true, force: true}))

describeDriverConformance({
  name: 'local',
  makeDriver: () => createLocalDriver(),
  options: {subnet: SUBNET},
  context,
  cluster: {name: 'conformance', sshPublicKey: generateSshKeyPair('conformance').publicKey},
  hostNames: ['conf1', 'conf2'],
  listResources: async () =>
    execFileSync('ip', ['netns', 'list'], {encoding: 'utf8'})
      .split('\n')
      .map((l) => l.split(' ')[0]!)
      .filter((n) => n.startsWith('belt-10-218-') || n === 'belt-hub-10-218')
      .sort(),
  missingMachine: () => ({
    id: 'belt-10-218-999-ghost',
    address: '10.218.4.237',
    ssh: {user: 'root', port: 22},
    data: {name: 'ghost', netns: 'belt-10-218-999-ghost', subnet: SUBNET, index: 999, dir: path.join(dir, 'ghost'), pid: 2 ** 22 - 1},
  }),
})
