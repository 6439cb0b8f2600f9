// A browser app's side of auth-service's sessions, with no dependencies: copy it into an app (it compiles to one
// ES module). It keeps the access token in memory only, where no other page's script and no storage can reach it;
// the refresh token stays in its HttpOnly cookie, which the browser alone sends. What it takes care of, each an
// answer of the service that a hand-written client tends to get wrong (README: Calling it from a browser app):
// - a page opened or reloaded signs in again from the cookie alone (restore);
// - calls made at once while the token is due share one refresh: each refresh rotates the cookie;
// - 409 AUTH_REFRESH_SUPERSEDED (another tab, or a sign-in in this browser, refreshed after this request was made)
//   is retried with the cookie as the browser now holds it, not taken for a sign-out;
// - 503 and 429 on a refresh keep the session (the browser has kept the cookie a 503 sets), and the token held
//   serves until it expires;
// - a call refused 401 (a session ended elsewhere revokes its access tokens at once) renews the token once and is
//   sent again; a refresh refused 401 is the end of the session, told to the app once;
// - signing out in one tab signs out the app's other tabs, and signing in moves them to the new session
//   (BroadcastChannel).

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
    const body: unknown = await response.json().catch(() => null)
    const { code, message } = (typeof body === 'object' && body !== null ? body : {}) as { code?: unknown, message?: unknown }
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

type Message = 'signed-in' | 'signed-out'

export class AuthClient {
  readonly #baseUrl: string
  readonly #onSignedOut: () => void
  readonly #tabs: InstanceType<typeof BroadcastChannel> | null
  #token: HeldToken | null = null
  /** Whether this tab holds a session: unknown until a refresh or a sign-in says, and after another tab signs in. */
  #state: 'unknown' | 'in' | 'out' = 'unknown'
  #refreshing: Promise<string | null> | null = null

  constructor (options: AuthClientOptions = {}) {
    this.#baseUrl = options.baseUrl ?? ''
    this.#onSignedOut = options.onSignedOut ?? (() => {})
    this.#tabs = typeof BroadcastChannel === 'function' ? new BroadcastChannel(`auth-client:${this.#baseUrl}`) : null
    if (this.#tabs !== null) this.#tabs.onmessage = (event: { data: unknown }) => { this.#heard(event.data as Message) }
  }

  get signedIn (): boolean {
    return this.#state === 'in'
  }

  /** Signs in: a new session, which ends the one this browser held, in every tab. Throws AuthError when refused. */
  async signIn (email: string, password: string): Promise<void> {
    const response = await this.#post('/auth/login', { email, password })
    if (!response.ok) throw await AuthError.of(response)
    this.#keep(await response.json() as Tokens)
    this.#tabs?.postMessage('signed-in' satisfies Message)
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
    if (held !== null && Date.now() < held.renewAt) return held.value
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
    const renewed = await this.#renew(token).catch(() => null)
    return renewed === null ? response : await fetch(url, withBearer(init, renewed))
  }

  /** Ends this browser's session, in every tab. A 503 leaves it alive (the store could not end it): try again. */
  async signOut (): Promise<void> {
    const response = await this.#post('/auth/logout')
    if (!response.ok) throw await AuthError.of(response)
    this.#ended(false)
    this.#tabs?.postMessage('signed-out' satisfies Message)
  }

  /** Ends every session of the user, on every device. */
  async signOutEverywhere (): Promise<void> {
    const response = await this.fetch('/auth/logout-all', { method: 'POST' })
    if (!response.ok) throw await AuthError.of(response)
    this.#ended(false)
    this.#tabs?.postMessage('signed-out' satisfies Message)
  }

  close (): void {
    this.#tabs?.close()
  }

  /**
   * A new token in place of `stale` (null: none held), from one refresh shared by every caller: each refresh rotates
   * the cookie. A caller whose token was already replaced gets the new one without a request.
   */
  async #renew (stale: string | null): Promise<string | null> {
    if (this.#token !== null && this.#token.value !== stale && Date.now() < this.#token.renewAt) return this.#token.value
    this.#refreshing ??= this.#refresh().finally(() => { this.#refreshing = null })
    return await this.#refreshing
  }

  async #refresh (): Promise<string | null> {
    for (let retry = 0; ; retry++) {
      const response = await this.#post('/auth/refresh')
      if (response.ok) return this.#keep(await response.json() as Tokens)
      if (response.status === 409 && retry < SUPERSEDED_RETRIES) {
        await new Promise((resolve) => setTimeout(resolve, SUPERSEDED_FIRST_WAIT_MS * 2 ** retry))
        continue
      }
      const error = await AuthError.of(response)
      if (response.status !== 401) throw error
      this.#ended(this.#state === 'in')
      return null
    }
  }

  async #post (path: string, body?: object): Promise<Response> {
    try {
      return await fetch(`${this.#baseUrl}${path}`, {
        method: 'POST',
        // The refresh cookie goes to, and comes from, another origin too.
        credentials: 'include',
        ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
      })
    } catch (error) {
      throw new AuthError('NETWORK', 0, (error as Error).message)
    }
  }

  #keep ({ accessToken, expiresIn }: Tokens): string {
    // Timed from its arrival on this machine's clock, which the token's own exp may disagree with.
    const now = Date.now()
    const lifeMs = expiresIn * 1000
    this.#token = { value: accessToken, renewAt: now + lifeMs - Math.min(lifeMs / 4, 60_000), expiresAt: now + lifeMs }
    this.#state = 'in'
    return accessToken
  }

  #ended (tell: boolean): void {
    this.#token = null
    this.#state = 'out'
    if (tell) this.#onSignedOut()
  }

  #heard (message: Message): void {
    if (message === 'signed-out') {
      this.#ended(this.#state === 'in')
      return
    }
    // Another tab signed in, which ended the session this tab's token is of: the browser's cookie is the new session's,
    // for this tab's next call to take up.
    this.#token = null
    if (this.#state === 'out') this.#state = 'unknown'
  }
}

function withBearer (init: RequestInit, token: string | null): RequestInit {
  if (token === null) return init
  const headers = new Headers(init.headers)
  headers.set('authorization', `Bearer ${token}`)
  return { ...init, headers }
}
