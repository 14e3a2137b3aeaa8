import type {DriverOption} from '../driver.js'

export const localDescription =
  'Real hosts on this machine: each host is a set of Linux namespaces (network, mount, uts, pid) with its own sshd, ' +
  'copy-on-write system directories and /var/lib/docker, on a private bridge with no route off the machine. Needs root.'

export const localOptions: readonly DriverOption[] = [
  {
    name: 'subnet',
    description: 'IPv4 /16 for local hosts; the gateway on this machine takes .0.1, hosts take .1.1 onwards',
    env: 'BELT_LOCAL_SUBNET',
    pinned: true,
    default: '10.213.0.0/16',
  },
]
