import fastifyCookie from '@fastify/cookie'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../src/config.js'

export type PresentedRefreshCookie =
  | { status: 'missing' }
  /** Two or more cookies of the refresh name: someone planted one (cookie tossing); trust neither. */
  | { status: 'duplicate', values: string[] }
  | { status: 'present', value: string }

/** Every value presented: with planted duplicates, the genuine one is among them, and so may the holder's be. */
export function presentedValues (cookie: PresentedRefreshCookie): string[] {
  return cookie.status === 'present' ? [cookie.value] : cookie.status === 'duplicate' ? cookie.values : []
}

declare module 'fastify' {
  interface FastifyInstance {
    refreshCookie: {
      read (request: FastifyRequest): PresentedRefreshCookie
      set (reply: FastifyReply, token: string, maxAgeSeconds: number): void
      /** Expires the cookie; `everywhere` also on every other path a planted copy would be sent from (pathsSentTo). */
      clear (reply: FastifyReply, everywhere?: boolean): void
      /** Expires planted copies on every path but the cookie's own, where this answer sets it. */
      clearElsewhere (reply: FastifyReply): void
    }
  }
}

/**
 * Every cookie path from which a browser sends a cookie to the routes that read the refresh cookie (RFC 6265 §5.1.4:
 * each ancestor of the auth routes' path, with and without its trailing slash, and each route's own path). For
 * `/auth`: `/`, `/auth`, `/auth/`, `/auth/refresh`, `/auth/logout`, `/auth/login`.
 */
export function pathsSentTo (authPath: string): string[] {
  const paths = ['/']
  let ancestor = ''
  for (const segment of authPath.split('/').slice(1)) {
    ancestor += `/${segment}`
    paths.push(ancestor, `${ancestor}/`)
  }
  return [...paths, ...['refresh', 'logout', 'login'].map((route) => `${authPath}/${route}`)]
}

/**
 * @fastify/cookie's serializer, without its hooks (below): registered in a scope of its own, where it loads the
 * `cookie` module it serializes with.
 */
export async function cookieSerializer (fastify: FastifyInstance): Promise<FastifyInstance['serializeCookie']> {
  let serialize: FastifyInstance['serializeCookie'] | undefined
  await fastify.register(async function cookieSerializer (scope) {
    await scope.register(fastifyCookie, { hook: false })
    serialize = scope.serializeCookie
  })
  if (serialize === undefined) throw new Error('@fastify/cookie did not decorate serializeCookie')
  return serialize
}

/**
 * The attributes of each cookie the service sets, on `path`: HttpOnly, and `Secure` and `SameSite` as configured.
 * SameSite=None serves an app on another site, where the cookie is a third-party one: browsers that block those
 * (Chromium does by default) keep it only when it is Partitioned (CHIPS), in a jar of the app's own site; a browser
 * that does not know the attribute ignores it.
 */
export function cookieAttributes ({ secure, sameSite }: Config['cookie'], path: string) {
  return { httpOnly: true, secure, sameSite, path, partitioned: sameSite === 'none' }
}

/**
 * Every value of one cookie name in a Cookie header (`prefix`: the name and `=`), in the order sent. The cookie parser
 * keeps only the first of equal names, and a copy planted beside the browser's own (cookie tossing) may come first.
 */
export function cookieValues (header: string | undefined, prefix: string): string[] {
  if (header === undefined || !header.includes(prefix)) return []
  const values: string[] = []
  for (const pair of header.split(';')) {
    const trimmed = pair.trimStart()
    if (trimmed.startsWith(prefix)) values.push(trimmed.slice(prefix.length).trimEnd())
  }
  return values
}

/**
 * The refresh token lives only in this cookie: HttpOnly (no script reads it), Secure,
 * SameSite=Strict (COOKIE_SAMESITE may relax it for apps on another site; plugins/csrf.ts
 * keeps cross-site requests out either way), Path=/auth (under PUBLIC_PATH_PREFIX, where browsers reach the auth
 * routes): browsers send it to the auth routes and nowhere else. It is never in a body or a URL.
 *
 * @fastify/cookie serializes every Set-Cookie value. It is registered in a scope of its own because
 * only its serializer is used: its reply decorators parse the request's Cookie header and add an onSend
 * hook to every response of the service, and the refresh cookie (the one cookie there is) is read
 * from the raw header and written as one header. The attributes are serialized once at start; a
 * refresh only appends its token and Max-Age (bench/README.md: the cost per refresh).
 */
export default fp(async function refreshCookiePlugin (fastify) {
  const { name, path } = fastify.config.cookie
  const serializeCookie = await cookieSerializer(fastify)

  const attributes = cookieAttributes(fastify.config.cookie, path)
  const prefix = `${name}=`
  // "; Path=/auth; HttpOnly; Secure; SameSite=Strict": everything after the value, as @fastify/cookie writes it.
  const attributeSuffix = serializeCookie(name, 'v', attributes).slice(prefix.length + 1)
  // Expiring a copy on each path it may have been given: planted duplicates sit on other paths browsers send to the
  // routes that read the cookie.
  const clearing = (cookiePath: string): string => serializeCookie(name, '', { ...attributes, path: cookiePath, expires: new Date(0), maxAge: 0 })
  const clearHere = clearing(path)
  const clearElsewhere = pathsSentTo(path).filter((p) => p !== path).map(clearing)
  const clearEverywhere = [clearHere, ...clearElsewhere]

  fastify.decorate('refreshCookie', {
    read (request: FastifyRequest): PresentedRefreshCookie {
      const values = cookieValues(request.headers.cookie, prefix)
      if (values.length === 0) return { status: 'missing' }
      if (values.length > 1) return { status: 'duplicate', values }
      return { status: 'present', value: values[0] as string }
    },
    set (reply: FastifyReply, token: string, maxAgeSeconds: number) {
      // Tokens are base64url and dots: nothing in them needs encoding.
      reply.header('set-cookie', `${prefix}${token}; Max-Age=${Math.floor(maxAgeSeconds)}${attributeSuffix}`)
    },
    clear (reply: FastifyReply, everywhere = false) {
      reply.header('set-cookie', everywhere ? clearEverywhere : clearHere)
    },
    clearElsewhere (reply: FastifyReply) {
      reply.header('set-cookie', clearElsewhere)
    }
  })
}, { name: 'refresh-cookie', dependencies: ['config'], fastify: '5.x' })
