import type { AccessRevocations } from './access-revocations.js'
import { StoreUnavailableError } from './errors.js'
import type { FamilyStore, FamilySummary, RotateResult, SessionMeta } from './family-store.js'
import type { RefreshTokenCodec } from './refresh-token.js'
import { mayHaveRun, UnansweredWrites, type UnansweredWritesOptions } from './unanswered-writes.js'

export interface IssuedSession {
  userId: string
  email: string
  familyId: string
  /** The opaque refresh token: goes into the cookie and nowhere else. */
  refreshToken: string
  /** Cookie Max-Age: min(idle timeout, remaining absolute lifetime). */
  ttlSeconds: number
}

export interface EndedSession {
  userId: string
  familyId: string
  /** False when the family had already ended (or expired). */
  revoked: boolean
}

export type RefreshOutcome =
  /**
   * `grace`: the parent presented again within the grace window, answered with its existing successor.
   * `acceptedSecret`: the session began under a secret of REFRESH_TOKEN_ACCEPTED_SECRETS, not the current one.
   */
  | ({ status: 'ok', grace: boolean, acceptedSecret: boolean } & IssuedSession)
  | { status: 'invalid' }
  | { status: 'limited', retryAfterSeconds: number }
  | { status: 'reused', userId: string, familyId: string }
  /** A late attempt (RotateResult's `superseded`): the session lives on under a newer token than the one presented. */
  | { status: 'superseded' }
  /**
   * The store did not answer in time, so whether the rotation ran is unknown. `refreshToken` is the presented token's
   * successor, good either way: current if the rotation ran (or runs late), a token ahead of the store's if it never
   * does (family-rotate.lua takes it as current). A client that keeps the presented token instead could be taken
   * for a replay once the grace window has passed. `error` is the store's, to answer with.
   */
  | { status: 'unavailable', refreshToken: string, error: InstanceType<typeof StoreUnavailableError> }

/**
 * Refresh-token sessions: login starts a family, refresh rotates it, logout ends it.
 * Every path that ends a family also revokes that family's access tokens.
 * Knows nothing of HTTP; the routes translate outcomes into responses.
 */
export class SessionService {
  readonly #codec: RefreshTokenCodec
  readonly #store: FamilyStore
  readonly #revocations: AccessRevocations
  readonly #unanswered: UnansweredWrites

  constructor (codec: RefreshTokenCodec, store: FamilyStore, revocations: AccessRevocations, options: UnansweredWritesOptions) {
    this.#codec = codec
    this.#store = store
    this.#revocations = revocations
    this.#unanswered = new UnansweredWrites(store, revocations, options)
  }

  /**
   * A new family for every login; a refresh cookie sent along is never adopted. `replacing`: the user's families the
   * caller ends once the login is answered (ownFamilies), which make no room for the new one at the cap.
   */
  async start (user: { id: string, email: string }, meta: SessionMeta, replacing: readonly string[] = []): Promise<IssuedSession & { evictedFamilyIds: string[] }> {
    const sealed = this.#codec.seal(this.#codec.mint(user.id))
    const familyId = sealed.token.familyId
    const { ttlSeconds, evictedFamilyIds } = await this.#store.create({
      userId: user.id,
      email: user.email,
      familyId,
      tokenHash: sealed.digest,
      userAgent: meta.userAgent,
      ip: meta.ip,
      replacing
    }).catch((err: unknown) => {
      // Unanswered is not undone: a stalled store runs the create once it wakes (evicting past the cap), and the login
      // has failed by then. Not awaited: the 503 is not held back for a store that has just failed to answer.
      if (mayHaveRun(err)) {
        this.#unanswered.endFamily(user.id, familyId, false).catch(() => {})
        this.#unanswered.revokeEnded(user.id)
      }
      throw err
    })
    // Families evicted by the per-user cap are ended like any other.
    await this.#revocations.revoke(evictedFamilyIds)
    return {
      userId: user.id,
      email: user.email,
      familyId,
      refreshToken: sealed.value,
      ttlSeconds,
      evictedFamilyIds
    }
  }

  /** Rotates a presented refresh token: one store round trip whatever the outcome. */
  async refresh (presented: string | undefined, meta: SessionMeta): Promise<RefreshOutcome> {
    const opened = this.#codec.open(presented)
    // Forged or malformed tokens never reach the store, so they cannot revoke anything.
    if (opened === null) return { status: 'invalid' }
    const { token } = opened
    const successor = this.#codec.seal(this.#codec.successor(token))
    let result: RotateResult
    try {
      result = await this.#store.rotate({
        userId: token.userId,
        familyId: token.familyId,
        generation: token.generation,
        presentedHash: opened.digest,
        successorHash: successor.digest,
        requestedAtMs: this.#store.now(),
        userAgent: meta.userAgent,
        ip: meta.ip
      })
    } catch (err) {
      // Run late, the rotation may have found a reuse and ended the family.
      if (mayHaveRun(err)) this.#unanswered.revokeEnded(token.userId)
      if (err instanceof StoreUnavailableError) return { status: 'unavailable', refreshToken: successor.value, error: err }
      throw err
    }
    switch (result.status) {
      case 'rotated':
      case 'grace':
        return {
          status: 'ok',
          grace: result.status === 'grace',
          acceptedSecret: token.keyIndex > 0,
          userId: token.userId,
          email: result.email,
          familyId: token.familyId,
          refreshToken: successor.value,
          ttlSeconds: result.ttlSeconds
        }
      case 'limited':
      case 'superseded':
        return result
      case 'reused':
        await this.#revocations.revoke([token.familyId])
        return { status: 'reused', userId: token.userId, familyId: token.familyId }
      default:
        return { status: 'invalid' }
    }
  }

  /** The families of `userId` that the genuine refresh tokens among `presented` belong to. */
  ownFamilies (userId: string, presented: readonly string[]): string[] {
    const ids: string[] = []
    for (const value of presented) {
      const holder = this.holder(value)
      if (holder?.userId === userId) ids.push(holder.familyId)
    }
    return ids
  }

  /** The session a genuine refresh token belongs to, read from the token alone (its tag vouches for it); null for any other. */
  holder (presented: string | undefined): { userId: string, familyId: string } | null {
    const token = this.#codec.open(presented)?.token
    return token === undefined ? null : { userId: token.userId, familyId: token.familyId }
  }

  /** Ends the family a genuine refresh token belongs to; null when the token is not one of ours. */
  end (presented: string | undefined): Promise<EndedSession | null> {
    return this.#endPresented(presented, (userId, familyId) => this.#store.revoke(userId, familyId))
  }

  /**
   * Ends the family of a genuine refresh token whose cookie a new login replaces in the same browser (FamilyStore.replace:
   * for the grace window its tabs' refreshes in flight are answered superseded); null when the token is not one of ours.
   */
  replace (presented: string | undefined): Promise<EndedSession | null> {
    return this.#endPresented(presented, (userId, familyId) => this.#store.replace(userId, familyId))
  }

  async #endPresented (presented: string | undefined, revoke: (userId: string, familyId: string) => Promise<boolean>): Promise<EndedSession | null> {
    const token = this.#codec.open(presented)?.token
    if (token === undefined) return null
    const revoked = await this.#ending(token.userId, () => revoke(token.userId, token.familyId))
    // Even when the family had already expired: its last access tokens may still be live.
    await this.#revocations.revoke([token.familyId])
    return { userId: token.userId, familyId: token.familyId, revoked }
  }

  /**
   * Ends a session started for a login that will not be answered with it (refused, or failed after the session
   * began). Never rejects: a store that cannot take it now is asked again until it does.
   */
  discard (userId: string, familyId: string): Promise<void> {
    return this.#unanswered.endFamily(userId, familyId, true)
  }

  /** Follow-ups of the store's unanswered writes not yet done. */
  get pendingFollowUps (): number {
    return this.#unanswered.size
  }

  /** Of them, second endings of sessions (revokeAllEventually) the store has not taken yet. */
  get pendingSecondEndings (): number {
    return this.#unanswered.retries
  }

  /** A last try at what the store's unanswered writes left to do. */
  close (): Promise<void> {
    return this.#unanswered.close()
  }

  /** The user's live sessions, most recently used first. */
  list (userId: string): Promise<FamilySummary[]> {
    return this.#store.list(userId)
  }

  /** True while the session is live in the store, which every instance shares: not ended, not expired. */
  isLive (userId: string, familyId: string): Promise<boolean> {
    return this.#store.isLive(userId, familyId)
  }

  /** Ends one session of the user; false when it is not a live session of theirs. */
  async revoke (userId: string, familyId: string): Promise<boolean> {
    const revoked = await this.#ending(userId, () => this.#store.revoke(userId, familyId))
    if (revoked) await this.#revocations.revoke([familyId])
    return revoked
  }

  /** Ends every session of the user; returns the ended ones. */
  async revokeAll (userId: string): Promise<string[]> {
    const revoked = await this.#ending(userId, () => this.#store.revokeAll(userId))
    await this.#revocations.revoke(revoked)
    return revoked
  }

  /** Ends every session of the user but `keptFamilyId`, only while that one is live; false (nothing ended) once it has ended. */
  async revokeOthers (userId: string, keptFamilyId: string): Promise<boolean> {
    const revoked = await this.#ending(userId, () => this.#store.revokeOthers(userId, keptFamilyId))
    if (revoked === null) return false
    await this.#revocations.revoke(revoked)
    return true
  }

  /**
   * Ends every session of the user but `keptFamilyId` (every one, once that one has ended too) after a change that is
   * already made: a password set, an account deleted. A login that read the account before the change may have begun
   * a session since the sessions were first ended. A store that cannot take this now is asked again until it does,
   * and the change is answered as made: this rejects only on a bug. Returns what was ended now.
   */
  async revokeAllEventually (userId: string, keptFamilyId?: string): Promise<string[]> {
    // Every try, the retries too, through #ending: one the store runs without answering still revokes what it ended.
    const attempt = () => this.#ending(userId, async (): Promise<string[]> => {
      const revoked = (keptFamilyId === undefined ? null : await this.#store.revokeOthers(userId, keptFamilyId)) ?? await this.#store.revokeAll(userId)
      await this.#revocations.revoke(revoked)
      return revoked
    })
    try {
      return await attempt()
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err
      this.#unanswered.retry(`sessions of ${userId}`, attempt)
      return []
    }
  }

  /**
   * A store write that may end some of the user's families. Unanswered, it may still run: the access tokens of what it
   * ended are revoked once it has settled, as they would have been on its answer (a retry finds nothing left to end).
   */
  async #ending<T> (userId: string, write: () => Promise<T>): Promise<T> {
    try {
      return await write()
    } catch (err) {
      if (mayHaveRun(err)) this.#unanswered.revokeEnded(userId)
      throw err
    }
  }
}
