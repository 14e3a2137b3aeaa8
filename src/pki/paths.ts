import path from 'node:path'
import type {Store} from '../store/store.js'

/**
 * Where the store keeps its certificates; `dir` is usable as DOCKER_CERT_PATH. Apart from ca.ts so
 * that commands which only name the files (`belt env`) do not load the X.509 library.
 */
export interface CertPaths {
  dir: string
  caCert: string
  caKey: string
  clientCert: string
  clientKey: string
  /** Where `rotateCa` keeps the pair it replaced. */
  previousDir: string
}

/** The certificate files of `store` (nothing is created). */
export function certPaths(store: Store): CertPaths {
  const dir = store.certsDir
  return {
    dir,
    caCert: path.join(dir, 'ca.pem'),
    caKey: path.join(dir, 'ca-key.pem'),
    clientCert: path.join(dir, 'cert.pem'),
    clientKey: path.join(dir, 'key.pem'),
    previousDir: path.join(dir, 'previous'),
  }
}
