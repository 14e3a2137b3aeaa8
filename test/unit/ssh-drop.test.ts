import {describe, expect, it} from 'vitest'
import {isConnectionDrop} from '../../src/services/bootstrap-hosts.js'

describe('isConnectionDrop: which bootstrap failures are a dropped connection (retried) and which are real', () => {
  it.each([
    ['Received unexpected SFTP session termination', true], // sshd's session process killed mid-upload (measured)
    ['No response from server', true], // the same mid-command (measured)
    ['Not connected', true],
    ['read ECONNRESET', true],
    ['write EPIPE', true],
    ['Keepalive timeout', true],
    ['Connection lost to node2', true], // the remote layer, when the connection closes under a pending operation
    ['systemctl daemon-reload; systemctl enable docker >/dev/nu... exited 255', true], // no exit status came back (measured)
    ['apt-get install -y docker.io exited 100', false],
    ['apt-get install docker.io failed (exit 100): E: Unable to locate package docker.io', false],
    ['the engine at 10.0.0.1:2376 did not answer over TLS within 90 s', false],
    ['node1 refuses the key for user ubuntu: run again with --amazonec2-ssh-user', false],
  ])('%s -> %s', (message, drop) => {
    expect(isConnectionDrop(new Error(message))).toBe(drop)
  })
})
