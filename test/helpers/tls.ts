import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

export interface TestCertificates {
  /** The private CA's certificate: what a client must trust. */
  ca: string
  /** The server's certificate, issued by the CA for `localhost` only, and its key. */
  cert: string
  key: string
}

/** A throw-away CA and a server certificate for `localhost`, made with the openssl command line. */
export async function makeCertificates (t: { teardown (fn: () => unknown): void }): Promise<TestCertificates> {
  const dir = mkdtempSync(join(tmpdir(), 'auth-tls-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = (name: string) => join(dir, name)
  const openssl = (...args: string[]) => promisify(execFile)('openssl', args, { cwd: dir, timeout: 20_000 })
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
  await openssl('req', '-x509', ...ec, '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '1', '-subj', '/CN=auth-service test CA')
  await openssl('req', ...ec, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=localhost')
  writeFileSync(file('san.ext'), 'subjectAltName=DNS:localhost\n')
  await openssl('x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial',
    '-out', file('server.pem'), '-days', '1', '-extfile', file('san.ext'))
  return { ca: file('ca.pem'), cert: file('server.pem'), key: file('server.key') }
}
