// Test certificates made with the openssl CLI: a private CA and a server certificate
// for 127.0.0.1 (subjectAltName IP:127.0.0.1) signed by it, as a real deployment would
// have. Tests skip with a reason when openssl is missing.
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface TestCerts {
  /** The CA certificate clients and servers trust (tls.ca). */
  ca: string
  /** Server certificate for IP 127.0.0.1, signed by the CA (tls.cert). */
  cert: string
  /** Its private key (tls.key). */
  key: string
}

/** undefined when the openssl CLI works, else why not (for `skip`). */
export function opensslMissing (): string | undefined {
  try {
    execFileSync('openssl', ['version'], { stdio: 'pipe', timeout: 10000 })
    return undefined
  } catch (err) {
    return `openssl CLI not usable: ${(err as Error).message.split('\n')[0] ?? ''}`
  }
}

/**
 * A CA named `<name>-test-ca` and a server certificate signed by it, in `dir` (files
 * prefixed by `name`, so several independent CAs can share a directory). EC keys keep
 * this fast on a loaded machine.
 */
export function makeCerts (dir: string, name = 'hiss'): TestCerts {
  const p = (f: string): string => join(dir, `${name}-${f}`)
  const run = (args: string[]): void => { execFileSync('openssl', args, { stdio: 'pipe', timeout: 30000 }) }
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  run(['req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '2', '-subj', `/CN=${name}-test-ca`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
  run(['req', ...ec, '-keyout', p('key.pem'), '-out', p('csr.pem'), '-subj', '/CN=127.0.0.1'])
  writeFileSync(p('ext.cnf'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n')
  run(['x509', '-req', '-in', p('csr.pem'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial',
    '-out', p('cert.pem'), '-days', '2', '-extfile', p('ext.cnf')])
  return { ca: p('ca.pem'), cert: p('cert.pem'), key: p('key.pem') }
}
