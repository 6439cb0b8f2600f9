import { copyString } from './copy-string.js'

/**
 * Refresh-token families: one per login, holding a keyed digest of its current token (no token itself), its
 * generation, and when the tokens it superseded within the grace window were superseded. Both implementations
 * enforce the same contract (test/src/family-store.contract.ts).
 */

/**
 * How many of the generations superseded within the grace window a family keeps the time of (the one the latest
 * rotation superseded aside): enough for eight tabs restored at once, each rotating in turn
 * (test/topology/load-balancer.test.ts), and few enough that on Redis their field stays under 64 bytes, in the hash's
 * compact encoding (a hash that leaves it takes four times the memory, and never returns to it). A client refreshing
 * one session faster than that has its oldest superseded tokens taken for reuse within the window.
 * src/lua/family-rotate.lua holds the same number under the same name.
 */
export const SUPERSEDED_TIMES_KEPT = 8

export interface FamilyPolicy {
  /** Sliding lifetime: a family unused this long expires. */
  idleTtlSeconds: number
  /** Hard lifetime from login; never extended. */
  absoluteTtlSeconds: number
  /** How long after a rotation the parent may be presented again and receive the same successor. 0 = strict. */
  reuseGraceSeconds: number
  /** Live families kept per user; the least recently used one is evicted beyond this. */
  maxFamiliesPerUser: number
  /** Refreshes allowed per session (family) in a window, across all instances. */
  refreshLimit: { max: number, windowSeconds: number }
  /** How long the store remembers which families it ended (recentlyEnded): as long as their access tokens may live. */
  rememberEndedMs: number
}

export interface SessionMeta {
  userAgent: string
  ip: string
}

export interface CreateFamilyInput extends SessionMeta {
  userId: string
  /** Kept with the family so a refresh can mint an access token from the store's one answer. */
  email: string
  familyId: string
  tokenHash: string
  /**
   * The user's families this one replaces (those of the refresh cookie the sign-in was sent with), which the caller
   * ends right after: the cap counts neither them nor evicts another of the user's families to make room for them,
   * not even for a sign-in that comes meanwhile, as long as the family replacing them lives.
   */
  replacing?: readonly string[]
}

export interface RotateInput extends SessionMeta {
  userId: string
  familyId: string
  /** Generation of the presented token (its tag has already been verified). */
  generation: number
  presentedHash: string
  /** Hash of the successor the caller derived from the presented token. */
  successorHash: string
  /**
   * When the caller asked, by the store's clock (FamilyStore.now). A superseded token presented by a request made before
   * the family's latest rotation is the caller's own late attempt, not a replay: the store client can retry a
   * command, or a stalled server run it, after the caller has answered and its client has refreshed since.
   */
  requestedAtMs: number
}

export interface CreateResult {
  ttlSeconds: number
  evictedFamilyIds: string[]
}

export type RotateResult =
  /** The presented token was current; its successor is now current. */
  | { status: 'rotated', ttlSeconds: number, email: string }
  /** The presented token is the immediate parent, within the grace window: the successor is already current. */
  | { status: 'grace', ttlSeconds: number, email: string }
  /** A genuine token older than allowed: the family has been revoked. */
  | { status: 'reused' }
  /**
   * A genuine superseded token in a request made before the family's latest rotation was (RotateInput.requestedAtMs):
   * a late attempt, not a replay. Nothing changed; the family lives on under its current token. Or a token of a family
   * that a new login's cookie replaced (FamilyStore.replace) within the grace window.
   */
  | { status: 'superseded' }
  /** No such live family (never existed, expired or revoked), or the token does not match it. */
  | { status: 'invalid' }
  /** Too many refreshes of this session in the current window; nothing changed. */
  | { status: 'limited', retryAfterSeconds: number }

export interface FamilySummary {
  familyId: string
  createdAtMs: number
  lastUsedAtMs: number
  expiresAtMs: number
  userAgent: string
  ip: string
}

/** A session as GET /auth/sessions and the operators' command show it: the family id as its id, ISO dates. */
export function sessionView (s: FamilySummary): { id: string, createdAt: string, lastUsedAt: string, expiresAt: string, userAgent: string, ip: string } {
  return {
    id: s.familyId,
    createdAt: new Date(s.createdAtMs).toISOString(),
    lastUsedAt: new Date(s.lastUsedAtMs).toISOString(),
    expiresAt: new Date(s.expiresAtMs).toISOString(),
    userAgent: s.userAgent,
    ip: s.ip
  }
}

export interface FamilyStore {
  /**
   * How long after failing an operation with AUTH_STORE_UNAVAILABLE (other than StoreNotReachedError) the store may
   * still apply it; 0 for a store that applies nothing it has not answered.
   */
  readonly lateWritesMs: number
  /**
   * The store's clock (ms since the epoch), on which a caller says when it asked (RotateInput.requestedAtMs): one that
   * every instance sharing the store reads alike, whatever its own wall clock says.
   */
  now (): number
  /**
   * Records a new family. Returns the cookie lifetime, min(idle, absolute), and the
   * families evicted to stay within the per-user cap (least recently used first).
   */
  create (input: CreateFamilyInput): Promise<CreateResult>
  /** Rotation, grace and reuse detection in one atomic step. */
  rotate (input: RotateInput): Promise<RotateResult>
  /** Revokes one family; true when it was live. */
  revoke (userId: string, familyId: string): Promise<boolean>
  /**
   * Revokes one family whose cookie a new login has replaced in its browser; true when it was live. For
   * FamilyPolicy.reuseGraceSeconds after, a refresh of it answers `superseded`, not `invalid`: a refresh that one of
   * the browser's tabs sent before the login's cookie arrived must not be told to clear the cookie, which by then is
   * the new login's. It is not listed, not live and not revoked again meanwhile.
   */
  replace (userId: string, familyId: string): Promise<boolean>
  /** Revokes every family of a user; returns the revoked family ids. */
  revokeAll (userId: string): Promise<string[]>
  /**
   * Revokes every family of a user but `keptFamilyId`, in one atomic step and only while that one is live; returns
   * the revoked family ids, or null (nothing revoked) when the kept family has ended.
   */
  revokeOthers (userId: string, keptFamilyId: string): Promise<string[] | null>
  /**
   * The user's families that a revoke, a detected reuse or the per-user cap ended within the last
   * FamilyPolicy.rememberEndedMs (perhaps a little longer): what a caller that the store did not answer reads, once
   * the late writes have settled, to revoke their access tokens.
   */
  recentlyEnded (userId: string): Promise<string[]>
  /** The user's live families, most recently used first. */
  list (userId: string): Promise<FamilySummary[]>
  /** True while the family is live: neither revoked, nor reused, nor expired. */
  isLive (userId: string, familyId: string): Promise<boolean>
  /** Resolves when the store answers; rejects with StoreUnavailableError otherwise. */
  ping (): Promise<void>
  close (): Promise<void>
}

/**
 * Longest user agent kept per session: enough to tell devices apart (browser UAs run 100–130
 * characters), and it fits two 64-byte fields, which keeps the Redis hash in its compact listpack
 * encoding (hash-max-listpack-value): ~2.5x less memory per session than a hashtable.
 */
export const MAX_USER_AGENT_LENGTH = 128

/**
 * A client's text as a session keeps it: printable ASCII only (one byte per character, nothing to confuse a terminal
 * or a log), each other character as `?`, at most `max` characters. A copy when cut: the part kept would otherwise
 * keep the whole header alive with it (src/copy-string.ts).
 */
export function clampPrintable (text: string, max: number): string {
  const printable = text.replace(/[^\x20-\x7e]/g, '?')
  return printable.length > max ? copyString(printable.slice(0, max)) : printable
}

/** A user agent as a session keeps it (clampPrintable). */
export function clampUserAgent (userAgent: string | undefined): string {
  return clampPrintable(userAgent ?? '', MAX_USER_AGENT_LENGTH)
}
