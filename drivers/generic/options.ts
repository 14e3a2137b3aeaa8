import type {DriverOption} from '../driver.js'

export const genericDescription =
  'Hosts you already have (any Linux machine with sshd and a login user that is root or has passwordless sudo): ' +
  'Belt logs in with your key, installs and configures the engine, and never creates or destroys the machine.'

/** Docker Machine's generic flags (same names and variables), plus a bastion and an inventory file. */
export const genericOptions: readonly DriverOption[] = [
  {name: 'ip-address', description: "the host's address (IP or DNS name) for one host; use --generic-hosts for many", env: 'GENERIC_IP_ADDRESS'},
  {name: 'ssh-user', description: 'login user: root, or a user with passwordless sudo', env: 'GENERIC_SSH_USER', default: 'root'},
  {
    name: 'ssh-key',
    description: 'your private key for the host, by path (read at each connection, never copied) [default: ~/.ssh/id_ed25519, id_ecdsa or id_rsa, the first that exists]',
    env: 'GENERIC_SSH_KEY',
  },
  {name: 'ssh-port', description: "the host's SSH port", env: 'GENERIC_SSH_PORT', default: '22'},
  {name: 'ssh-proxy', description: 'reach the host through this bastion, user@host[:port] (ssh -J); the same key logs in to both', env: 'GENERIC_SSH_PROXY'},
  {
    name: 'hosts',
    description: 'inventory file (YAML, JSON or CSV) of many hosts: name, address, and optionally user, port, key, proxy; the other flags are its defaults',
    env: 'GENERIC_HOSTS',
  },
]
