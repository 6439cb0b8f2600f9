// A browser app's side of auth-service's sessions, with no dependencies: copy it into an app (it compiles to one
// ES module). It keeps the access token in memory only, where no other page's script and no storage can reach it;
// the refresh token stays in its HttpOnly cookie, which the browser alone sends. What it takes care of, each an
// answer of the service that a hand-written client tends to get wrong (README: Calling it from a browser app):
// - a page opened or reloaded signs in again from the cookie alone (restore);
// - calls made at once while the token is due share one refresh, and so do the app's tabs (Web Locks), which share
//   its token (BroadcastChannel): each refresh rotates the cookie;
// - 409 AUTH_REFRESH_SUPERSEDED (another tab, or a sign-in in this browser, refreshed after this request was made)
//   is not taken for a sign-out: the token another tab has said it was given is taken up, or the refresh is retried
//   with the cookie as the browser now holds it;
// - 503 and 429 on a refresh keep the session (the browser has kept the cookie a 503 sets), and the token held
//   serves until it expires, with the next refresh tried after Retry-After or a growing wait, not at every call;
// - a call refused 401 for its token (a session ended elsewhere revokes its access tokens at once) renews the token
//   once and is sent again, where one refused for a password it carries is not (a second guess against the account's
//   limit); a refresh refused 401 is the end of the session, told to the app once;
// - signing out in one tab signs out the app's other tabs, and signing in moves them to the new session.

export interface AuthClientOptions {
  /**
   * Where the page reaches the service: '' on the page's own origin, '/api' where a proxy serves it under a prefix,
   * or another origin ('https://auth.example.com', listed in its ALLOWED_ORIGINS).
   */
  baseUrl?: string
  /**
   * Called when the session ends under the app: refused at a refresh (signed out or revoked elsewhere, expired, a copy
   * of the cookie used) or signed out in another tab. Not for this tab's own signOut.
   */
  onSignedOut?: () => void
  /**
   * Called when this tab, signed out (told so, or found so by restore or its own signOut), is signed in by another
   * tab: a sign-in there, or a refresh of a session begun outside the client. Not for this tab's own signIn.
   */
  onSignedIn?: () => void
}

/** A refusal or failure, with the service's stable `code` (README: HTTP contract), `NETWORK` when nothing answered. */
export class AuthError extends Error {
  readonly code: string
  readonly status: number
  /** Seconds to wait before trying again, when the service said (429, 503 SERVICE_BUSY). */
  readonly retryAfterSeconds: number | null

  constructor (code: string, status: number, message: string, retryAfterSeconds: number | null = null) {
    super(message)
    this.name = 'AuthError'
    this.code = code
    this.status = status
    this.retryAfterSeconds = retryAfterSeconds
  }

  /** Worth trying again later, the session intact: nothing answered, too many requests, or the store unavailable. */
  get transient (): boolean {
    return this.status === 0 || this.status === 409 || this.status === 429 || this.status >= 500
  }

  static async of (response: Response): Promise<AuthError> {
    const { code, message } = await errorBody(response)
    const retryAfter = Number(response.headers.get('retry-after') ?? Number.NaN)
    return new AuthError(typeof code === 'string' ? code : `HTTP_${response.status}`, response.status,
      typeof message === 'string' ? message : response.statusText, Number.isFinite(retryAfter) ? retryAfter : null)
  }
}

/** The body of a sign-in or a refresh. */
interface Tokens { accessToken: string, expiresIn: number }

interface HeldToken {
  value: string
  /** When to renew it ahead of use (Date.now() scale): a quarter of its life early, at most a minute. */
  renewAt: number
  expiresAt: number
}

/** Retries of a refresh answered 409, and the first wait: the other tab's cookie is in the jar or a round trip away. */
const SUPERSEDED_RETRIES = 3
const SUPERSEDED_FIRST_WAIT_MS = 100
/**
 * After a renewal fails for a moment while a token is held, the next is tried no sooner than Retry-After, or than this
 * wait, doubled at each failure up to the last: every call of every tab retrying would add load to a service already
 * failing.
 */
const RENEWAL_BACKOFF_MS = [1000, 30_000] as const
/** How long a tab waits for another tab's refresh before it refreshes by itself: that one may hang on the network. */
const SHARED_REFRESH_WAIT_MS = 10_000
/**
 * How long a tab that waited for another's refresh waits for that tab to say what it was given. The other tab told
 * the app's tabs before it let go, but a browser may hand over the lock before the message.
 */
const TOLD_WAIT_MS = 250

/**
 * What a tab tells the app's others, with when the request behind it was sent (on the tabs' one clock): a message
 * about an earlier request than the one behind what a tab holds is out of date (a refresh answered after a sign-in).
 */
type Message = { at: number } & ({ kind: 'token', token: HeldToken } | { kind: 'signed-out' })

/** Whether `data` is a message this client sends: a tab of another version of the app may say something else. */
function isMessage (data: unknown): data is Message {
  if (typeof data !== 'object' || data === null) return false
  const { at, kind, token } = data as Record<string, unknown>
  if (typeof at !== 'number') return false
  if (kind === 'signed-out') return true
  if (kind !== 'token' || typeof token !== 'object' || token === null) return false
  const { value, renewAt, expiresAt } = token as Record<string, unknown>
  return typeof value === 'string' && typeof renewAt === 'number' && typeof expiresAt === 'number'
}

/** The Web Locks API where the browser has it (Safari from 15.4): lib.dom's LockManager, as far as this uses it. */
interface Locks {
  request: <T>(name: string, options: { ifAvailable: true } | { signal: AbortSignal }, callback: (lock: object | null) => Promise<T>) => Promise<T>
}

export class AuthClient {
  readonly #baseUrl: string
  readonly #onSignedOut: () => void
  readonly #onSignedIn: () => void
  readonly #tabs: InstanceType<typeof BroadcastChannel> | null
  readonly #locks: Locks | null
  #token: HeldToken | null = null
  /** Whether this tab holds a session: unknown until a refresh or a sign-in says, here or in another tab. */
  #state: 'unknown' | 'in' | 'out' = 'unknown'
  /** When the request that set #token and #state was sent: a message of an earlier one is out of date. */
  #since = 0
  #refreshing: Promise<string | null> | null = null
  #signingIn: { email: string, password: string, done: Promise<void> } | null = null
  /** What this tab has heard from the others: each message it took up ends a wait for it (#toldSince). */
  #told: { count: number, wake: () => void } = { count: 0, wake: () => {} }
  /** No renewal of a held token before this (Date.now() scale), after one failed; and how many have failed in a row. */
  #renewAfter = 0
  #failedRenewals = 0

  constructor (options: AuthClientOptions = {}) {
    this.#baseUrl = options.baseUrl ?? ''
    this.#onSignedOut = options.onSignedOut ?? (() => {})
    this.#onSignedIn = options.onSignedIn ?? (() => {})
    this.#tabs = typeof BroadcastChannel === 'function' ? new BroadcastChannel(`auth-client:${this.#baseUrl}`) : null
    if (this.#tabs !== null) this.#tabs.onmessage = (event: { data: unknown }) => { this.#heard(event.data) }
    this.#locks = (globalThis as { navigator?: { locks?: Locks } }).navigator?.locks ?? null
  }

  get signedIn (): boolean {
    return this.#state === 'in'
  }

  /**
   * Signs in: a new session, which ends the one this browser held, in every tab. Throws AuthError when refused. A
   * sign-in with the same credentials while one is on its way (a form submitted twice) shares it: a second would make
   * a second session, and the browser would keep the cookie of one, the other left signed in with no one holding it.
   */
  async signIn (email: string, password: string): Promise<void> {
    const pending = this.#signingIn
    if (pending !== null && pending.email === email && pending.password === password) return await pending.done
    const done = this.#signIn(email, password).finally(() => {
      if (this.#signingIn?.done === done) this.#signingIn = null
    })
    this.#signingIn = { email, password, done }
    return await done
  }

  async #signIn (email: string, password: string): Promise<void> {
    const at = Date.now()
    const response = await this.#post('/auth/login', { email, password })
    if (!response.ok) throw await AuthError.of(response)
    this.#keep(await response.json() as Tokens, at)
  }

  /**
   * At page load: a token from the refresh cookie alone. True when the browser holds a live session, false when it
   * holds none; throws a transient AuthError when the service cannot say (the session is kept: try again later).
   */
  async restore (): Promise<boolean> {
    return await this.#renew(this.#token?.value ?? null) !== null
  }

  /**
   * A token to send as `Authorization: Bearer`, renewed when due; null when signed out. While a renewal fails for a
   * moment (503, 429, offline) the token held is given for as long as it lives.
   */
  async accessToken (): Promise<string | null> {
    const held = this.#token
    const now = Date.now()
    if (held !== null && (now < held.renewAt || (now < this.#renewAfter && now < held.expiresAt))) return held.value
    if (held === null && this.#state === 'out') return null
    try {
      return await this.#renew(held?.value ?? null)
    } catch (error) {
      if (held !== null && Date.now() < held.expiresAt && error instanceof AuthError && error.transient) return held.value
      throw error
    }
  }

  /**
   * fetch() with the access token, for this service's routes (a path: '/me'; with credentials, as some answer with the
   * cookie cleared) or another API that takes its tokens (a URL). A call refused 401 renews the token once and is sent
   * again, so `init.body` must be one that can be sent twice (not a stream).
   */
  async fetch (path: string | URL, options: RequestInit = {}): Promise<Response> {
    const own = typeof path === 'string' && path.startsWith('/')
    const url = own ? `${this.#baseUrl}${path}` : path
    const init: RequestInit = own ? { credentials: 'include', ...options } : options
    const token = await this.accessToken()
    const response = await fetch(url, withBearer(init, token))
    if (response.status !== 401 || token === null) return response
    // Of this service's 401s, only AUTH_TOKEN_INVALID is the token's: one for a wrong password
    // (AUTH_INVALID_CREDENTIALS), sent again, would be a second guess against the account's limit. Another API's 401
    // is taken for its token (its WWW-Authenticate challenge says so, but it may not expose it to this origin).
    if (own && (await errorBody(response.clone())).code !== 'AUTH_TOKEN_INVALID') return response
    const renewed = await this.#renew(token).catch(() => null)
    return renewed === null ? response : await fetch(url, withBearer(init, renewed))
  }

  /** Ends this browser's session, in every tab. A 503 leaves it alive (the store could not end it): try again. */
  async signOut (): Promise<void> {
    const at = Date.now()
    const response = await this.#post('/auth/logout')
    if (!response.ok) throw await AuthError.of(response)
    this.#signedOut(at)
  }

  /** Ends every session of the user, on every device. */
  async signOutEverywhere (): Promise<void> {
    const at = Date.now()
    await this.#send('POST', '/auth/logout-all')
    this.#signedOut(at)
  }

  /**
   * Changes the password: the user's other sessions end, this browser's is kept. Throws AuthError:
   * AUTH_INVALID_CREDENTIALS for a wrong current password (guesses are limited as at sign-in: RATE_LIMITED), then
   * AUTH_WEAK_PASSWORD or REQUEST_VALIDATION for the new one.
   */
  async changePassword (currentPassword: string, newPassword: string): Promise<void> {
    await this.#send('POST', '/auth/password', { currentPassword, newPassword })
  }

  /**
   * Deletes the account, its password asked again: every session ends, and every tab of the app is signed out. Throws
   * AuthError as changePassword does for the password; a 503 may leave the sessions ended with the account still
   * there, for the user to sign in to and delete again.
   */
  async deleteAccount (password: string): Promise<void> {
    const at = Date.now()
    await this.#send('DELETE', '/auth/account', { password })
    this.#signedOut(at)
  }

  close (): void {
    this.#tabs?.close()
  }

  /**
   * A new token in place of `stale` (null: none held), from one refresh shared by every caller of this tab and, where
   * the browser has Web Locks, by the app's other tabs: each refresh rotates the cookie. A caller whose token was
   * already replaced, here or by another tab, gets the new one without a request.
   */
  async #renew (stale: string | null): Promise<string | null> {
    const renewed = this.#renewed(stale)
    if (renewed !== null) return renewed
    this.#refreshing ??= this.#oneTabAtATime(async (waited) => {
      if (waited !== null) await this.#toldSince(waited)
      const renewed = this.#renewed(stale)
      if (renewed !== null) return renewed
      // Another tab signed out while this one waited.
      if (waited !== null && this.#told.count !== waited && this.#state === 'out') return null
      return await this.#refresh()
    }).finally(() => { this.#refreshing = null })
    return await this.#refreshing
  }

  #renewed (stale: string | null): string | null {
    const held = this.#token
    return held !== null && held.value !== stale && Date.now() < held.renewAt ? held.value : null
  }

  /**
   * Runs `refresh` while no other tab of the app runs one. When it had to wait for another tab's, it is given the
   * count of messages heard when it began to wait, to find what that tab was given. Without Web Locks, or after
   * waiting too long, it runs at once, and a race is answered 409 or within the grace window, as for any client.
   */
  async #oneTabAtATime<T> (refresh: (waited: number | null) => Promise<T>): Promise<T> {
    const locks = this.#locks
    if (locks === null) return await refresh(null)
    const name = `auth-client:refresh:${this.#baseUrl}`
    const busy = Symbol('busy')
    let granted = false
    try {
      const first = await locks.request(name, { ifAvailable: true }, async (lock) => {
        if (lock === null) return busy
        granted = true
        return await refresh(null)
      })
      if (first !== busy) return first as T
      const waited = this.#told.count
      return await locks.request(name, { signal: AbortSignal.timeout(SHARED_REFRESH_WAIT_MS) }, async () => {
        granted = true
        return await refresh(waited)
      })
    } catch (error) {
      if (granted) throw error
      return await refresh(null)
    }
  }

  /** Resolves once a message after the `count`th is heard, or after TOLD_WAIT_MS (the other tab's refresh failed). */
  async #toldSince (count: number): Promise<void> {
    if (this.#told.count !== count) return
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, TOLD_WAIT_MS)
      const wake = this.#told.wake
      this.#told.wake = () => { clearTimeout(timer); wake(); resolve() }
    })
  }

  async #refresh (): Promise<string | null> {
    for (let retry = 0; ; retry++) {
      const at = Date.now()
      let response: Response
      try {
        response = await this.#post('/auth/refresh')
      } catch (error) {
        throw this.#failed(error as AuthError)
      }
      // A request of another tab sent after this one (a sign-in, a sign-out, a refresh that superseded this one, 409)
      // has told this tab what the browser holds now.
      if (this.#since > at) return this.#token?.value ?? null
      if (response.ok) return this.#keep(await response.json() as Tokens, at)
      if (response.status === 409 && retry < SUPERSEDED_RETRIES) {
        await new Promise((resolve) => setTimeout(resolve, SUPERSEDED_FIRST_WAIT_MS * 2 ** retry))
        continue
      }
      const error = await AuthError.of(response)
      if (response.status !== 401) throw this.#failed(error)
      this.#ended(this.#state === 'in', at)
      return null
    }
  }

  /** Puts off the next renewal of the token held after a refresh failed: by Retry-After, or by the growing wait. */
  #failed (error: AuthError): AuthError {
    const [first, last] = RENEWAL_BACKOFF_MS
    const wait = error.retryAfterSeconds !== null ? error.retryAfterSeconds * 1000 : Math.min(first * 2 ** this.#failedRenewals, last)
    this.#failedRenewals++
    this.#renewAfter = Date.now() + wait
    return error
  }

  /** A call of one of this service's routes with the access token (fetch), whose refusal is thrown as an AuthError. */
  async #send (method: 'POST' | 'DELETE', path: string, body?: object): Promise<void> {
    let response: Response
    try {
      response = await this.fetch(path, { method, ...jsonBody(body) })
    } catch (error) {
      throw error instanceof AuthError ? error : new AuthError('NETWORK', 0, (error as Error).message)
    }
    if (!response.ok) throw await AuthError.of(response)
  }

  async #post (path: string, body?: object): Promise<Response> {
    try {
      return await fetch(`${this.#baseUrl}${path}`, {
        method: 'POST',
        // The refresh cookie goes to, and comes from, another origin too.
        credentials: 'include',
        ...jsonBody(body)
      })
    } catch (error) {
      throw new AuthError('NETWORK', 0, (error as Error).message)
    }
  }

  /** Holds the token of a sign-in or a refresh whose request was sent `at`, and gives it to the app's other tabs. */
  #keep ({ accessToken, expiresIn }: Tokens, at: number): string {
    // Timed from its arrival on this machine's clock, which the token's own exp may disagree with.
    const now = Date.now()
    const lifeMs = expiresIn * 1000
    const token = { value: accessToken, renewAt: now + lifeMs - Math.min(lifeMs / 4, 60_000), expiresAt: now + lifeMs }
    this.#held(token, at)
    this.#tabs?.postMessage({ kind: 'token', token, at } satisfies Message)
    return accessToken
  }

  #held (token: HeldToken, at: number): void {
    this.#token = token
    this.#state = 'in'
    this.#since = Math.max(this.#since, at)
    this.#failedRenewals = 0
    this.#renewAfter = 0
  }

  #signedOut (at: number): void {
    this.#ended(false, at)
    this.#tabs?.postMessage({ kind: 'signed-out', at } satisfies Message)
  }

  #ended (tell: boolean, at: number): void {
    this.#token = null
    this.#state = 'out'
    this.#since = Math.max(this.#since, at)
    if (tell) this.#onSignedOut()
  }

  #heard (message: unknown): void {
    if (!isMessage(message)) return
    // What this tab holds came of a later request: a refresh answered after a sign-in was of the session it ended.
    if (message.at < this.#since) return
    if (message.kind === 'signed-out') {
      this.#ended(this.#state === 'in', message.at)
    } else {
      // The browser's session as another tab was given it, by a refresh or a sign-in (which ended the session this
      // tab's token was of): the cookie is that session's.
      const was = this.#state
      this.#held(message.token, message.at)
      if (was === 'out') this.#onSignedIn()
    }
    const { wake } = this.#told
    this.#told = { count: this.#told.count + 1, wake: () => {} }
    wake()
  }
}

function withBearer (init: RequestInit, token: string | null): RequestInit {
  if (token === null) return init
  const headers = new Headers(init.headers)
  headers.set('authorization', `Bearer ${token}`)
  return { ...init, headers }
}

/** The service's error body, `{ code, message }`, as far as the response holds one. */
async function errorBody (response: Response): Promise<{ code?: unknown, message?: unknown }> {
  const body: unknown = await response.json().catch(() => null)
  return typeof body === 'object' && body !== null ? body : {}
}

function jsonBody (body: object | undefined): RequestInit {
  return body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }
}
