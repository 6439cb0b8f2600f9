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
  updatePasswordHash (id: string, passwordHash: string): Promise<void>
}

/** 128 random bits, base64url: as unguessable as a UUIDv4, 14 characters shorter in every key and token. */
export function newUserId (): string {
  return randomBytes(16).toString('base64url')
}
