import {Flags} from '@oclif/core'
import {serveEc2Emulator} from '../../../drivers/amazonec2/emulator/serve.js'
import {BaseCommand} from '../../base-command.js'
import {defaultStoreDir} from '../../store/store.js'

export default class EmulatorEc2 extends BaseCommand<typeof EmulatorEc2> {
  static override summary = 'Serve a local EC2 API emulator whose instances are real local hosts'
  static override description =
    'Listens on 127.0.0.1 and answers the EC2 Query API calls Belt makes (instances, images, key pairs, security groups, tags, VPCs, subnets, regions) in EC2\'s XML, errors and throttling included. ' +
    'Requests must be SigV4-signed (any credentials: use fake ones); the region of the signature picks the emulated region. ' +
    'Each instance is a host of the backing driver (local: network namespaces with sshd, needs root and sudo; like Ubuntu AMIs they log in as ubuntu, with passwordless sudo, and refuse root; simulated: a loopback address with a banner on port 22). ' +
    'Point Belt at it with --amazonec2-endpoint (AMAZONEC2_ENDPOINT, printed on stdout). Ctrl-C stops it and removes every host it made.'
  static override examples = [
    '<%= config.bin %> emulator ec2 --port 8773',
    'AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AMAZONEC2_ENDPOINT=http://127.0.0.1:8773 <%= config.bin %> create --driver amazonec2 node[1:3]',
    '<%= config.bin %> emulator ec2 --backing simulated --rate-limit 10/s --fault-throttle 0.1 --fault-capacity 0.05',
  ]
  static override flags = {
    port: Flags.integer({char: 'p', description: 'TCP port on 127.0.0.1 (0: any free port, printed)', default: 0, min: 0, max: 65_535}),
    'boot-delay': Flags.integer({description: "milliseconds a new instance stays 'pending' (at least; stops and terminations take as long)", default: 1000, min: 0}),
    'rate-limit': Flags.string({description: 'requests per second of the account, N/s (token bucket, burst of one second); 0 for none', default: '20/s'}),
    'fault-throttle': Flags.string({description: 'fraction of requests answered RequestLimitExceeded (503) on top of the rate limit', default: '0'}),
    'fault-capacity': Flags.string({description: 'fraction of RunInstances calls answered InsufficientInstanceCapacity (500)', default: '0'}),
    backing: Flags.string({description: 'driver that makes the instances’ hosts', options: ['local', 'simulated'], default: 'local'}),
    'local-subnet': Flags.string({description: 'IPv4 /16 of the local backing hosts (the instances’ addresses and the default VPC)', default: '10.217.0.0/16'}),
    seed: Flags.integer({description: 'seed of the fault draws (same seed, same faults)', default: 1}),
  }

  async run(): Promise<void> {
    const f = this.flags
    await serveEc2Emulator(
      {
        port: f.port,
        bootDelayMs: f['boot-delay'],
        rateLimit: f['rate-limit'],
        faultThrottle: f['fault-throttle'],
        faultCapacity: f['fault-capacity'],
        backing: f.backing as 'local' | 'simulated',
        localSubnet: f['local-subnet'],
        storeDir: f.store ?? defaultStoreDir(),
        seed: f.seed,
      },
      {out: (line) => process.stdout.write(line + '\n'), err: (line) => this.note(line)},
    )
  }
}
