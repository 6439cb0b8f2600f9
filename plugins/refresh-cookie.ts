import fastifyCookie from '@fastify/cookie'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'

export type PresentedRefreshCookie =
  | { status: 'missing' }
  /** Two or more cookies of the refresh name: someone planted one (cookie tossing); trust neither. */
  | { status: 'duplicate', values: string[] }
  | { status: 'present', value: string }

declare module 'fastify' {
  interface FastifyInstance {
    refreshCookie: {
      read (request: FastifyRequest): PresentedRefreshCookie
      set (reply: FastifyReply, token: string, maxAgeSeconds: number): void
      /** Expires the cookie; `everywhere` also clears copies planted on narrower paths. */
      clear (reply: FastifyReply, everywhere?: boolean): void
    }
  }
}

/** Path the refresh cookie is scoped to: browsers send it to the auth routes and nowhere else. */
export const REFRESH_COOKIE_PATH = '/auth'

/**
 * The refresh token lives only in this cookie: HttpOnly (no script reads it), Secure,
 * SameSite=Strict (COOKIE_SAMESITE may relax it for apps on another site; plugins/csrf.ts
 * keeps cross-site requests out either way), Path=/auth. It is never in a body or a URL.
 */
export default fp(async function refreshCookiePlugin (fastify) {
  const { name, secure, sameSite } = fastify.config.cookie
  // hook: false — only the refresh routes look at cookies, and they read the raw header (see read()).
  await fastify.register(fastifyCookie, { hook: false })

  const attributes = { httpOnly: true, secure, sameSite, path: REFRESH_COOKIE_PATH }
  const prefix = `${name}=`

  fastify.decorate('refreshCookie', {
    read (request: FastifyRequest): PresentedRefreshCookie {
      const header = request.headers.cookie
      if (header === undefined || !header.includes(prefix)) return { status: 'missing' }
      // The cookie parser keeps only the first of equal names; count them on the raw header.
      const values: string[] = []
      for (const pair of header.split(';')) {
        const trimmed = pair.trimStart()
        if (trimmed.startsWith(prefix)) values.push(trimmed.slice(prefix.length).trimEnd())
      }
      if (values.length === 0) return { status: 'missing' }
      if (values.length > 1) return { status: 'duplicate', values }
      return { status: 'present', value: values[0] as string }
    },
    set (reply: FastifyReply, token: string, maxAgeSeconds: number) {
      reply.setCookie(name, token, { ...attributes, maxAge: maxAgeSeconds })
    },
    clear (reply: FastifyReply, everywhere = false) {
      reply.clearCookie(name, attributes)
      if (!everywhere) return
      // A planted duplicate may sit on a narrower path; clear the ones it can have been given.
      for (const path of [`${REFRESH_COOKIE_PATH}/refresh`, `${REFRESH_COOKIE_PATH}/logout`, '/']) {
        reply.clearCookie(name, { ...attributes, path })
      }
    }
  })
}, { name: 'refresh-cookie', dependencies: ['config'], fastify: '5.x' })
