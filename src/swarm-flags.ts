import {Flags} from '@oclif/core'
import {DEFAULT_JOIN_CONCURRENCY, type SwarmSettings} from './services/swarm.js'
import {MAX_MANAGERS} from './swarm/plan.js'

/** Flags of `belt swarm init` and `belt create --swarm`. */
export const swarmFlags = {
  managers: Flags.integer({description: `managers in the swarm: odd, at most ${MAX_MANAGERS}`, default: 3, helpGroup: 'SWARM'}),
  'join-concurrency': Flags.integer({description: 'worker joins at once (a sliding window); measured: 16 joins 100 hosts with no timeout on 2 cores', default: DEFAULT_JOIN_CONCURRENCY, min: 1, helpGroup: 'SWARM'}),
  'manager-availability': Flags.string({
    description: 'availability of managers: auto drains them from 10 nodes on, so they only run Raft and the dispatcher',
    options: ['auto', 'active', 'drain'],
    default: 'auto',
    helpGroup: 'SWARM',
  }),
  ingress: Flags.boolean({
    description: "keep Docker's ingress network (routing mesh) in a new swarm; --no-ingress removes it before nodes join, so none builds its sandbox (for large experiments)",
    default: true,
    allowNo: true,
    helpGroup: 'SWARM',
  }),
  'advertise-addr-type': Flags.string({description: 'address nodes advertise: auto is the private one when hosts have one', options: ['auto', 'public', 'private'], default: 'auto', helpGroup: 'SWARM'}),
}

export function swarmSettingsFrom(f: {managers: number; 'join-concurrency': number; 'manager-availability': string; 'advertise-addr-type': string; ingress?: boolean}): SwarmSettings {
  return {
    noIngress: f.ingress === false,
    managers: f.managers,
    concurrency: f['join-concurrency'],
    availability: f['manager-availability'] as SwarmSettings['availability'],
    advertiseType: f['advertise-addr-type'] as SwarmSettings['advertiseType'],
  }
}
