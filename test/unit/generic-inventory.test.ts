import os from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {InventoryError, hostFromOptions, parseInventory, parseProxy} from '../../drivers/generic/inventory.js'
import {blobToLine, connectionPlan} from '../../drivers/generic/ssh.js'

const defaults = {'ssh-user': 'root', 'ssh-port': '22'}
const expected = [
  {name: 'web1', address: '10.0.0.1', user: 'root', port: 22, key: undefined, proxy: undefined},
  {name: 'web2', address: 'web2.example.com', user: 'ubuntu', port: 2222, key: '/srv/inv/keys/web2', proxy: {user: 'ops', host: 'bastion.example.com', port: 2200}},
]

describe('generic inventory', () => {
  it('reads the same hosts from YAML, JSON and CSV, flags as defaults, keys relative to the file', () => {
    const yaml = `hosts:\n  - name: web1\n    address: 10.0.0.1\n  - {name: web2, address: web2.example.com, user: ubuntu, port: 2222, key: keys/web2, proxy: "ops@bastion.example.com:2200"}\n`
    const json = JSON.stringify([{name: 'web1', address: '10.0.0.1'}, {name: 'web2', address: 'web2.example.com', user: 'ubuntu', port: 2222, key: 'keys/web2', proxy: 'ops@bastion.example.com:2200'}])
    const csv = '# my hosts\nname,address,user,port,key,proxy\nweb1,10.0.0.1\nweb2,web2.example.com,ubuntu,2222,keys/web2,ops@bastion.example.com:2200\n'
    expect(parseInventory(yaml, '/srv/inv/hosts.yaml', defaults)).toEqual(expected)
    expect(parseInventory(json, '/srv/inv/hosts.json', defaults)).toEqual(expected)
    expect(parseInventory(csv, '/srv/inv/hosts.csv', defaults)).toEqual(expected)
  })

  it('applies --generic-ssh-user, -port, -key and -proxy to rows that do not set them', () => {
    const [h] = parseInventory('- {name: a, address: 10.1.1.1}', '/x/h.yml', {'ssh-user': 'deploy', 'ssh-port': '2022', 'ssh-key': '~/.ssh/k', 'ssh-proxy': 'jump.example.com'})
    expect(h).toEqual({name: 'a', address: '10.1.1.1', user: 'deploy', port: 2022, key: path.join(os.homedir(), '.ssh/k'), proxy: {user: 'deploy', host: 'jump.example.com', port: 22}})
  })

  it.each([
    ['- {name: Web_1, address: 10.0.0.1}', /host 1: name must be a DNS label/],
    ['- {name: a, address: 10.0.0.1}\n- {name: a, address: 10.0.0.2}', /host 2: name a is also .*host 1/],
    ['- {name: a}', /host 1: a has no address/],
    ['- {name: a, address: 10.0.0.1, port: 70000}', /port must be a TCP port/],
    ['- {name: a, address: 10.0.0.1, password: x}', /unknown field 'password'/],
    ['- {name: a, address: "10.0.0.1; rm -rf /"}', /address must be an IP address or DNS name/],
    ['- {name: a, address: 10.0.0.1, user: "root -o x"}', /user must be a login name/],
    ['hosts: 3', /expected a list of hosts/],
    ['[]', /lists no host/],
    ['- {name: a, address: [}', /not valid YAML/],
  ])('refuses %j with one line naming the problem', (text, message) => {
    expect(() => parseInventory(text, '/x/h.yaml', defaults)).toThrow(message)
    expect(() => parseInventory(text, '/x/h.yaml', defaults)).toThrow(InventoryError)
  })

  it('names the CSV line of a bad row, and refuses a header without name and address', () => {
    expect(() => parseInventory('name,address\na,10.0.0.1\nb,10.0.0.2,extra\n', '/x/h.csv', defaults)).toThrow('/x/h.csv:3: 3 values for 2 columns')
    expect(() => parseInventory('host,ip\na,10.0.0.1\n', '/x/h.csv', defaults)).toThrow(/h\.csv:1: the CSV header must name the columns/)
  })

  it('one host from the flags; the address is required', () => {
    expect(hostFromOptions({'ip-address': '192.0.2.7', 'ssh-user': 'admin', 'ssh-port': '22', 'ssh-proxy': 'bastion:2222'})).toEqual({
      address: '192.0.2.7',
      user: 'admin',
      port: 22,
      key: undefined,
      proxy: {user: 'admin', host: 'bastion', port: 2222},
    })
    expect(() => hostFromOptions({'ssh-user': 'root'})).toThrow('missing --generic-ip-address')
  })

  it('parses user@host[:port] proxies, IPv6 in brackets', () => {
    expect(parseProxy('ops@[2001:db8::1]:2200', 'root')).toEqual({user: 'ops', host: '2001:db8::1', port: 2200})
    expect(parseProxy('10.0.0.9', 'root')).toEqual({user: 'root', host: '10.0.0.9', port: 22})
    expect(() => parseProxy('a@b@c', 'root')).toThrow('--generic-ssh-proxy must be user@host[:port]')
    expect(() => parseProxy('ops@host:ssh', 'root')).toThrow(/port of --generic-ssh-proxy must be a TCP port/)
  })
})

describe('generic connection plan', () => {
  it('goes straight to the host without a proxy', () => {
    expect(connectionPlan({address: '10.0.0.1', user: 'root', port: 22})).toEqual([{role: 'host', user: 'root', host: '10.0.0.1', port: 22}])
  })

  it('logs in to the bastion first, then to the host through a channel the bastion forwards', () => {
    expect(connectionPlan({address: '10.0.0.1', user: 'deploy', port: 2222, proxy: {user: 'ops', host: 'bastion', port: 22}})).toEqual([
      {role: 'proxy', user: 'ops', host: 'bastion', port: 22},
      {role: 'host', user: 'deploy', host: '10.0.0.1', port: 2222},
    ])
  })

  it('turns a raw host key blob into `type base64`', () => {
    const type = Buffer.from('ssh-ed25519')
    const blob = Buffer.concat([Buffer.from([0, 0, 0, type.length]), type, Buffer.from([0, 0, 0, 2, 1, 2])])
    expect(blobToLine(blob)).toBe(`ssh-ed25519 ${blob.toString('base64')}`)
  })
})
