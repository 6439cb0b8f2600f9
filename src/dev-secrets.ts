import { createHash, randomBytes } from 'node:crypto'
import { link, open, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeySetJson, type AsymmetricAlgorithm } from './signing-keys.js'

/** What a development secrets file holds: a key set per algorithm JWT_ALGORITHM may name, and a refresh-token secret. */
export type DevSecretName = `JWT_KEYS:${AsymmetricAlgorithm}` | 'REFRESH_TOKEN_SECRET'
export type DevSecrets = Record<DevSecretName, string>

const NAMES: DevSecretName[] = ['JWT_KEYS:ES256', 'JWT_KEYS:EdDSA', 'REFRESH_TOKEN_SECRET']

export function generateDevSecret (name: DevSecretName): string {
  return name === 'REFRESH_TOKEN_SECRET' ? randomBytes(48).toString('base64url') : generateKeySetJson(name.slice('JWT_KEYS:'.length) as AsymmetricAlgorithm)
}

/**
 * Reads the development secrets at `path`, creating the file (mode 0600) when there is none, so that every local
 * instance started from the same directory signs and verifies alike, across restarts too.
 */
export async function readOrCreateDevSecrets (path: string): Promise<DevSecrets> {
  let text: string
  try {
    text = await readOwnFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    await createDevSecrets(path)
    text = await readOwnFile(path)
  }
  let secrets: unknown
  try {
    secrets = JSON.parse(text)
  } catch {}
  const missing = NAMES.filter((name) => typeof (secrets as Partial<DevSecrets> | null)?.[name] !== 'string')
  if (missing.length > 0) {
    throw new Error(`${path} does not hold the development secrets this service generates (${missing.join(', ')} missing); remove it to have them generated again`)
  }
  return secrets as DevSecrets
}

/**
 * The file's text, if it is this user's alone, as ssh asks of a private key: anyone else who can write it (another
 * user's file planted in a shared directory, one left writable) chooses the keys this instance trusts, and anyone
 * else who can read it can sign and forge the tokens it issues.
 */
async function readOwnFile (path: string): Promise<string> {
  const file = await open(path, 'r')
  try {
    const stats = await file.stat()
    const { uid, mode } = stats
    // Before the owner and mode: their advice (remove it, chmod it) is no advice for /tmp, or for /dev/null.
    if (stats.isDirectory()) throw new Error(`${path} is a directory: DEV_SECRETS_FILE names the file the development secrets are kept in, such as ${join(path, '.dev-secrets.json')}`)
    if (!stats.isFile()) throw new Error(`${path} is not a regular file: DEV_SECRETS_FILE names the file the development secrets are kept in`)
    const user = process.getuid?.()
    if (user !== undefined && uid !== user) {
      throw new Error(`${path} belongs to another user (uid ${uid}); remove it to have the development secrets generated again`)
    }
    // Windows reports every file as open to all (its ACLs are not mode bits), and has no uid either.
    if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
      throw new Error(`${path} is open to other users (mode ${(mode & 0o777).toString(8)}); chmod 600 it, or remove it to have the development secrets generated again`)
    }
    return await file.readFile('utf8')
  } finally {
    await file.close()
  }
}

/**
 * Creates the file unless there is one. Instances starting together agree: each writes a complete file of its own and
 * links it into place, which fails for all but the first, so none reads a half-written file, or one that another
 * instance then replaces.
 */
export async function createDevSecrets (path: string): Promise<void> {
  const draft = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
  await writeFile(draft, `${JSON.stringify(Object.fromEntries(NAMES.map((name) => [name, generateDevSecret(name)])), null, 2)}\n`, { mode: 0o600, flag: 'wx' })
  try {
    await link(draft, path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  } finally {
    await unlink(draft)
  }
}

/** What Redis holds of a development secret: enough for instances to tell whether they agree, nothing to sign with. */
export function devSecretDigest (value: string): string {
  return createHash('sha256').update('auth-service dev secret\0').update(value).digest('base64url')
}
