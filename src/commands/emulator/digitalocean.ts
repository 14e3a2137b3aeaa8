import {Flags} from '@oclif/core'
import {serveEmulator} from '../../../drivers/digitalocean/emulator/serve.js'
import {BaseCommand} from '../../base-command.js'
import {defaultStoreDir} from '../../store/store.js'

export default class EmulatorDigitalocean extends BaseCommand<typeof EmulatorDigitalocean> {
  static override summary = 'Serve a local DigitalOcean API emulator whose droplets are real local hosts'
  static override description =
    'Listens on 127.0.0.1 and answers the DigitalOcean API calls Belt makes (account, SSH keys, regions, sizes, images, droplets and their actions, firewalls, tags) as the published API does, rate-limit headers included. ' +
    'Each droplet is a host of the backing driver (local: network namespaces with sshd, needs root; simulated: a loopback address with a banner on port 22). ' +
    'Point Belt at it with DIGITALOCEAN_API_URL (printed on stdout) and any token. Ctrl-C stops it and removes every host it made.'
  static override examples = [
    '<%= config.bin %> emulator digitalocean --port 8600',
    'DIGITALOCEAN_API_URL=http://127.0.0.1:8600 DIGITALOCEAN_ACCESS_TOKEN=x <%= config.bin %> create --driver digitalocean node[1:3]',
    '<%= config.bin %> emulator digitalocean --backing simulated --fault-429 0.1 --fault-never-active 0.02',
  ]
  static override flags = {
    port: Flags.integer({char: 'p', description: 'TCP port on 127.0.0.1 (0: any free port, printed)', default: 0, min: 0, max: 65_535}),
    'boot-delay': Flags.integer({description: "milliseconds a new droplet stays 'new' (at least; +-20%)", default: 2000, min: 0}),
    'rate-limit': Flags.string({description: 'requests per token: N/h and/or N/min, as the real API', default: '5000/h,250/min'}),
    'fault-429': Flags.string({description: 'fraction of requests answered 429 Too Many Requests', default: '0'}),
    'fault-5xx': Flags.string({description: 'fraction of requests answered 500/503 (for writes, half after the work is done)', default: '0'}),
    'fault-never-active': Flags.string({description: "fraction of droplets that stay 'new' forever", default: '0'}),
    backing: Flags.string({description: 'driver that makes the droplets’ hosts', options: ['local', 'simulated'], default: 'local'}),
    'local-subnet': Flags.string({description: 'IPv4 /16 of the local backing hosts (the droplets’ public addresses)', default: '10.214.0.0/16'}),
    seed: Flags.integer({description: 'seed of the fault draws (same seed, same faults)', default: 1}),
    'droplet-limit': Flags.integer({description: "the account's droplet limit", default: 1000, min: 1}),
    'reject-token': Flags.string({description: 'answer 401 to this token (to rehearse a revoked token); repeatable', multiple: true}),
  }

  async run(): Promise<void> {
    const f = this.flags
    await serveEmulator(
      {
        port: f.port,
        bootDelayMs: f['boot-delay'],
        rateLimit: f['rate-limit'],
        fault429: f['fault-429'],
        fault5xx: f['fault-5xx'],
        faultNeverActive: f['fault-never-active'],
        backing: f.backing as 'local' | 'simulated',
        localSubnet: f['local-subnet'],
        storeDir: f.store ?? defaultStoreDir(),
        seed: f.seed,
        dropletLimit: f['droplet-limit'],
        rejectTokens: f['reject-token'] ?? [],
      },
      {out: (line) => process.stdout.write(line + '\n'), err: (line) => this.note(line)},
    )
  }
}
