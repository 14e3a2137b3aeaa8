// @peculiar/x509 needs the Reflect metadata polyfill loaded before it (src/pki/x509.ts does the same).
import 'reflect-metadata'
import * as x509 from '@peculiar/x509'
import {execFileSync} from 'node:child_process'
import {X509Certificate} from 'node:crypto'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import * as der from '../../src/pki/der.js'
import {generateCa, issueClientCert, issueServerCert, type KeyType} from '../../src/pki/x509.js'

const hex = (b: Buffer) => b.toString('hex')

describe('DER encodings (X.690 vectors)', () => {
  it('encodes OIDs, lengths, integers, named bits and times as DER requires', () => {
    expect(hex(der.objectIdentifier('1.2.840.10045.4.3.2'))).toBe('06082a8648ce3d040302')
    expect(hex(der.objectIdentifier('2.5.29.17'))).toBe('0603551d11')
    expect(hex(der.tlv(0x04, Buffer.alloc(200))).slice(0, 6)).toBe('0481c8')
    expect(hex(der.tlv(0x04, Buffer.alloc(300))).slice(0, 8)).toBe('0482012c')
    // A positive INTEGER whose top bit is set gets a 0x00; leading zero bytes go.
    expect(hex(der.unsignedInteger(Buffer.from([0x80, 1])))).toBe('0203008001')
    expect(hex(der.unsignedInteger(Buffer.from([0, 0, 0x7f])))).toBe('02017f')
    // keyUsage digitalSignature (bit 0): 7 unused bits; with keyEncipherment (bit 2): 5.
    expect(hex(der.namedBits([0]))).toBe('03020780')
    expect(hex(der.namedBits([0, 2]))).toBe('030205a0')
    expect(hex(der.namedBits([0, 8]))).toBe('0303078080')
    expect(der.time(new Date('2049-12-31T23:59:59.999Z')).toString('latin1')).toBe('\x17\x0d491231235959Z')
    expect(der.time(new Date('2050-01-01T00:00:00Z')).toString('latin1')).toBe('\x18\x0f20500101000000Z')
    expect(() => der.objectIdentifier('1.x')).toThrow(/bad OID/)
  })

  it('reads back what it writes, and refuses truncated input', () => {
    const s = der.sequence(der.smallInteger(2), der.octetString(Buffer.alloc(130, 7)))
    const kids = der.children(der.readElement(s))
    expect(kids.map((k) => k.tag)).toEqual([0x02, 0x04])
    expect(kids[1]!.content.length).toBe(130)
    expect(() => der.readElement(s.subarray(0, s.length - 1))).toThrow(/truncated/)
  })
})

describe.each<KeyType>(['ecdsa-p256', 'rsa-2048'])('leaf certificates built in DER, %s CA', (keyType) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'belt-der-'))
  afterAll(() => rmSync(dir, {recursive: true, force: true}))

  it('pass `openssl verify` and carry the CA subject bytes, its key id and IPv6 SANs', async () => {
    const ca = await generateCa({keyType})
    const server = await issueServerCert(ca, {hostName: 'h1', machineName: 'node1', addresses: ['10.1.2.3', 'fe80::1', '2001:db8::10:1', '::ffff:10.0.0.7', 'node1.example.com']})
    const client = await issueClientCert(ca)
    writeFileSync(path.join(dir, 'ca.pem'), ca.certPem)
    writeFileSync(path.join(dir, 'server.pem'), server.certPem)
    writeFileSync(path.join(dir, 'client.pem'), client.certPem)
    const out = execFileSync('openssl', ['verify', '-x509_strict', '-CAfile', path.join(dir, 'ca.pem'), path.join(dir, 'server.pem'), path.join(dir, 'client.pem')], {encoding: 'utf8'})
    expect(out).toMatch(/server\.pem: OK/)
    expect(out).toMatch(/client\.pem: OK/)
    const c = new X509Certificate(server.certPem)
    for (const ip of ['10.1.2.3', 'fe80::1', '2001:db8::10:1', '127.0.0.1']) expect(c.checkIP(ip)).toBe(ip)
    // A dotted IPv4 tail arrives in the URL serialiser's hex form and still covers the address.
    expect(c.checkIP('::ffff:10.0.0.7')).toBeDefined()
    expect(c.checkIP('::ffff:10.0.0.8')).toBeUndefined()
    expect(c.checkHost('node1.example.com', {subject: 'never'})).toBe('node1.example.com')
    // Issuer bytes equal the CA's subject bytes; the authority key id is the CA's subject key id.
    const leaf = new x509.X509Certificate(server.certPem)
    const caCert = new x509.X509Certificate(ca.certPem)
    expect(Buffer.from(leaf.issuerName.toArrayBuffer()).equals(Buffer.from(caCert.subjectName.toArrayBuffer()))).toBe(true)
    expect(leaf.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId).toBe(caCert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId)
    expect(leaf.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId).toMatch(/^[0-9a-f]{40}$/)
    expect(leaf.signatureAlgorithm.name).toBe(keyType === 'ecdsa-p256' ? 'ECDSA' : 'RSASSA-PKCS1-v1_5')
  })
})
