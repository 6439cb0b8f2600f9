import { randomBytes } from 'node:crypto'

export interface User {
  id: string
  /** Normalised (see normalizeEmail). */
  email: string
}

export interface UserRecord extends User {
  passwordHash: string
}

/** Where accounts live. Emails are passed already normalised. */
export interface UserDirectory {
  /** Creates an account; null when the email is taken. */
  create (email: string, passwordHash: string): Promise<User | null>
  findByEmail (email: string): Promise<UserRecord | null>
  findById (id: string): Promise<UserRecord | null>
  /**
   * Replaces the account's hash `replacing` with `passwordHash`; false, changing nothing, when the account holds
   * another hash by now (a password change or a rehash got there first) or does not exist.
   */
  updatePasswordHash (id: string, replacing: string, passwordHash: string): Promise<boolean>
  /** Deletes the account, whose email is then free to register again; false when there is no such account. */
  delete (id: string): Promise<boolean>
}

/** 128 random bits, base64url: as unguessable as a UUIDv4, 14 characters shorter in every key and token. */
export function newUserId (): string {
  return randomBytes(16).toString('base64url')
}
