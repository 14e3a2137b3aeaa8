import {execFileSync} from 'node:child_process'
import {describe, expect, it} from 'vitest'
import {blobToLine, fingerprintOf, generateSshKeyPair, publicKeyBlob} from '../../src/ssh/keys.js'
import {shJoin, shQuote} from '../../src/ssh/quote.js'
import {commandLine} from '../../src/ssh/session.js'
import {exitCodeOf} from '../../src/ssh/ssh2-remote.js'
import {parseScpTarget} from '../../src/ssh/transfer.js'

describe('shQuote', () => {
  const words = ['plain', '', "it's", 'a b', '$(reboot)', '`id`', '"q"', 'x\ny', '\\', '*', '-n', "''", 'üñí']
  it.each(words)('a real sh sees %j unchanged', (w) => {
    // printf through the real shell: the only honest test of quoting.
    expect(execFileSync('/bin/sh', ['-c', `printf %s ${shQuote(w)}`], {encoding: 'utf8'})).toBe(w)
  })

  it('joins an argv that the shell splits back exactly', () => {
    const out = execFileSync('/bin/sh', ['-c', `for a in ${shJoin(words)}; do printf '[%s]' "$a"; done`], {encoding: 'utf8'})
    expect(out).toBe(words.map((w) => `[${w}]`).join(''))
  })

  it('refuses NUL', () => expect(() => shQuote('a\0b')).toThrow(/NUL/))
})

describe('ssh keys', () => {
  it('makes an ed25519 pair whose fingerprint matches ssh-keygen', () => {
    const kp = generateSshKeyPair('belt-test')
    expect(kp.publicKey).toMatch(/^ssh-ed25519 AAAA\S+ belt-test$/)
    expect(kp.privateKey).toMatch(/BEGIN OPENSSH PRIVATE KEY/)
    const viaKeygen = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', '-'], {input: kp.publicKey, encoding: 'utf8'})
    expect(viaKeygen).toContain(kp.fingerprint)
  })

  it('round-trips a key line through its blob and rejects a lying type', () => {
    const kp = generateSshKeyPair('x')
    const line = kp.publicKey.split(' ').slice(0, 2).join(' ')
    expect(blobToLine(publicKeyBlob(kp.publicKey))).toBe(line)
    expect(fingerprintOf(publicKeyBlob(line))).toBe(kp.fingerprint)
    expect(() => publicKeyBlob(line.replace('ssh-ed25519', 'ssh-rsa'))).toThrow(/says ssh-rsa/)
  })
})

describe('sessions and copies', () => {
  it.each([
    [['hostname'], 'hostname'],
    [['ls | wc -l'], 'ls | wc -l'],
    [['sh', '-c', 'exit 7'], "sh -c 'exit 7'"],
  ])('command %j runs as %s', (argv, line) => expect(commandLine(argv)).toBe(line))

  it.each([
    [0, undefined, 0],
    [3, undefined, 3],
    [undefined, 'KILL', 137],
    [undefined, 'TERM', 143],
    [undefined, undefined, 255],
  ])('exit %s / signal %s -> %i', (code, sig, want) => expect(exitCodeOf(code, sig)).toBe(want))

  it.each([
    ['node1:/etc/hosts', {host: 'node1', path: '/etc/hosts'}],
    ['node1:', {host: 'node1', path: '.'}],
    ['./a:b', {path: './a:b'}],
    ['/tmp/x', {path: '/tmp/x'}],
    ['Bad_Host:/x', {path: 'Bad_Host:/x'}],
  ])('%s', (arg, want) => expect(parseScpTarget(arg)).toEqual(want))
})
