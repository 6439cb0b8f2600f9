import { newUserId, type User, type UserDirectory, type UserRecord } from './user-directory.js'

/** The embedded default: accounts live as long as the process. */
export class MemoryUserDirectory implements UserDirectory {
  readonly #byEmail = new Map<string, UserRecord>()
  readonly #byId = new Map<string, UserRecord>()

  async create (email: string, passwordHash: string): Promise<User | null> {
    if (this.#byEmail.has(email)) return null
    const record = { id: newUserId(), email, passwordHash }
    this.#byEmail.set(email, record)
    this.#byId.set(record.id, record)
    return { id: record.id, email }
  }

  async findByEmail (email: string): Promise<UserRecord | null> {
    return copy(this.#byEmail.get(email))
  }

  async findById (id: string): Promise<UserRecord | null> {
    return copy(this.#byId.get(id))
  }

  async updatePasswordHash (id: string, replacing: string, passwordHash: string): Promise<boolean> {
    const record = this.#byId.get(id)
    if (record === undefined || record.passwordHash !== replacing) return false
    record.passwordHash = passwordHash
    return true
  }

  async delete (id: string): Promise<boolean> {
    const record = this.#byId.get(id)
    if (record === undefined) return false
    this.#byId.delete(id)
    this.#byEmail.delete(record.email)
    return true
  }
}

function copy (record: UserRecord | undefined): UserRecord | null {
  return record === undefined ? null : { ...record }
}
