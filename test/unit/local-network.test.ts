import {describe, expect, it} from 'vitest'
import {firstFreeIndex, hostAddress, hostNamespace, overlappingRoutes, parseLocalSubnet, takenIndices, type LocalNetwork} from '../../drivers/local/network.js'

const net = parseLocalSubnet('10.213.0.0/16') as LocalNetwork

describe('parseLocalSubnet', () => {
  it.each([
    ['10.213.0.0/16', {prefix: '10.213', hub: 'belt-hub-10-213', gatewayLink: 'belt-10-213', gatewayAddress: '10.213.0.1'}],
    ['172.20.0.0/16', {prefix: '172.20', gatewayLink: 'belt-172-20'}],
    ['192.168.0.0/16', {prefix: '192.168', gatewayLink: 'belt-192-168'}],
  ])('%s', (cidr, expected) => {
    expect(parseLocalSubnet(cidr)).toMatchObject(expected)
  })

  it.each([
    ['10.213.0.0/24', /not an IPv4 \/16/],
    ['10.213.5.0/16', /not an IPv4 \/16/],
    ['8.8.0.0/16', /not a private network/],
    ['172.32.0.0/16', /not a private network/],
    ['300.1.0.0/16', /not a private network/],
    ['banana', /not an IPv4 \/16/],
  ])('refuses %s', (cidr, msg) => {
    expect(parseLocalSubnet(cidr)).toMatch(msg)
  })

  it('gateway link names fit IFNAMSIZ (15)', () => {
    expect((parseLocalSubnet('192.168.0.0/16') as LocalNetwork).gatewayLink.length).toBeLessThanOrEqual(15)
  })
})

describe('hostAddress', () => {
  it.each([
    [1, '10.213.1.1'],
    [254, '10.213.1.254'],
    [255, '10.213.2.1'],
    [1000, '10.213.4.238'],
  ])('host %i is %s', (i, ip) => expect(hostAddress(net, i)).toBe(ip))

  it.each([0, 1001, 1.5])('refuses index %s', (i) => expect(() => hostAddress(net, i)).toThrow(RangeError))
})

describe('allocation', () => {
  const ipLink = [
    '1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN',
    '2: br0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500',
    '3: up0@if5: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 master br0',
    '4: h1@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 master br0',
    '6: h3@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 master br0',
  ].join('\n')

  it('reads the hub ports as taken indices and picks the first gap', () => {
    const taken = takenIndices(ipLink)
    expect([...taken].sort()).toEqual([1, 3])
    expect(firstFreeIndex(taken)).toBe(2)
    expect(firstFreeIndex(new Set())).toBe(1)
    expect(firstFreeIndex(new Set(Array.from({length: 1000}, (_, i) => i + 1)))).toBeUndefined()
  })

  it('namespace names are unique per address and readable', () => {
    expect(hostNamespace(net, 7, 'node3')).toBe('belt-10-213-7-node3')
  })
})

describe('overlappingRoutes', () => {
  const routes = [
    'default via 172.17.0.1 dev eth0',
    '10.0.0.0/8 via 192.168.1.1 dev wg0',
    '10.213.0.0/16 dev belt-10-213 proto kernel scope link src 10.213.0.1',
    '172.17.0.0/16 dev eth0 proto kernel scope link src 172.17.0.2',
  ].join('\n')

  it('finds a wider route covering the subnet, ignores its own gateway and the default route', () => {
    expect(overlappingRoutes(net, routes)).toEqual(['10.0.0.0/8 via 192.168.1.1 dev wg0'])
  })

  it('finds a narrower route inside the subnet', () => {
    expect(overlappingRoutes(net, '10.213.7.0/24 dev eth1 scope link')).toHaveLength(1)
    expect(overlappingRoutes(net, '10.214.7.0/24 dev eth1 scope link')).toEqual([])
  })
})
