import { createHash } from 'node:crypto'
import type { Result } from 'ioredis'
import { StoreUnavailableError } from './errors.js'
import { guardStore, luaScript, type RedisClient } from './redis-client.js'
import { newUserId, type User, type UserDirectory, type UserRecord } from './user-directory.js'

declare module 'ioredis' {
  interface RedisCommander<Context> {
    authUserCreate (account: string, id: string, email: string, passwordHash: string): Result<number, Context>
    authUserSetHash (account: string, id: string, replacing: string, passwordHash: string): Result<number, Context>
    authUserDelete (account: string, id: string): Result<number, Context>
  }
}

/**
 * Accounts in Redis:
 *   <prefix>user:email:<sha256(email)>  hash: id, email, h (argon2id hash)
 *   <prefix>user:id:<id>                the account key, for look-ups by id
 * Key names carry a digest of the email so no address appears in a key listing.
 */
export class RedisUserDirectory implements UserDirectory {
  readonly #redis: RedisClient
  readonly #prefix: string

  constructor (redis: RedisClient, keyPrefix: string) {
    this.#redis = redis
    this.#prefix = keyPrefix
    if (typeof redis.authUserCreate !== 'function') {
      redis.defineCommand('authUserCreate', { numberOfKeys: 1, lua: luaScript('user-create') })
      redis.defineCommand('authUserSetHash', { numberOfKeys: 1, lua: luaScript('user-set-hash') })
      redis.defineCommand('authUserDelete', { numberOfKeys: 1, lua: luaScript('user-delete') })
    }
  }

  async create (email: string, passwordHash: string): Promise<User | null> {
    const id = newUserId()
    const accountKey = this.#emailKey(email)
    // The id pointer is written first: if the account write then fails, the pointer dangles harmlessly
    // (findById checks it), whereas the reverse order could leave an account unreachable by id.
    await guardStore(this.#redis, () => this.#redis.set(this.#idKey(id), accountKey))
    const created = await guardStore(this.#redis, () => this.#redis.authUserCreate(accountKey, id, email, passwordHash))
    if (created !== 1) {
      await guardStore(this.#redis, () => this.#redis.del(this.#idKey(id)))
      return null
    }
    return { id, email }
  }

  async findByEmail (email: string): Promise<UserRecord | null> {
    return this.#read(this.#emailKey(email))
  }

  async findById (id: string): Promise<UserRecord | null> {
    const accountKey = await guardStore(this.#redis, () => this.#redis.get(this.#idKey(id)))
    if (accountKey === null) return null
    const record = await this.#read(accountKey)
    return record?.id === id ? record : null
  }

  async updatePasswordHash (id: string, replacing: string, passwordHash: string): Promise<boolean> {
    const accountKey = await guardStore(this.#redis, () => this.#redis.get(this.#idKey(id)))
    if (accountKey === null) return false
    return await guardStore(this.#redis, () => this.#redis.authUserSetHash(accountKey, id, replacing, passwordHash)) === 1
  }

  async delete (id: string): Promise<boolean> {
    const accountKey = await guardStore(this.#redis, () => this.#redis.get(this.#idKey(id)))
    if (accountKey === null) return false
    const deleted = await guardStore(this.#redis, () => this.#redis.authUserDelete(accountKey, id)) === 1
    // The pointer after the account (another slot on a cluster). The account is gone whatever happens to it: a failure
    // here does not undo the deletion, and the pointer it leaves behind leads nowhere (findById checks the account's id).
    await guardStore(this.#redis, () => this.#redis.del(this.#idKey(id))).catch((err: unknown) => {
      if (!(err instanceof StoreUnavailableError)) throw err
    })
    return deleted
  }

  async #read (accountKey: string): Promise<UserRecord | null> {
    const [id, email, passwordHash] = await guardStore(this.#redis, () => this.#redis.hmget(accountKey, 'id', 'email', 'h'))
    if (id == null || email == null || passwordHash == null) return null
    return { id, email, passwordHash }
  }

  #emailKey (email: string): string {
    return `${this.#prefix}user:email:${createHash('sha256').update(email).digest('base64url')}`
  }

  #idKey (id: string): string {
    return `${this.#prefix}user:id:${id}`
  }
}
