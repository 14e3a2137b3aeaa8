import {defineConfig} from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests create real namespaces, sshd and dockerd processes on a 2-core machine:
    // run files one at a time so they never compete for the same subnet or CPU.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 180_000,
    reporters: ['default'],
  },
})
