import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { DeviceCookieCodec, type KnownDevice } from '../src/device-cookie.js'
import { cookieSerializer } from './refresh-cookie.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The browsers an account has signed in from (src/device-cookie.ts): login limits their failures per browser. */
    deviceCookie: {
      /** The device the request's cookie names, if it names `userId`'s, with a tag this service made. */
      read (request: FastifyRequest, userId: string): KnownDevice | null
      /** A new cookie for a sign-in of `userId` in this browser. */
      set (reply: FastifyReply, userId: string): void
    }
  }
}

/** Named after the refresh cookie, so services that give theirs other names on one host keep theirs apart too. */
export function deviceCookieName (refreshCookieName: string): string {
  return `${refreshCookieName}_device`
}

/** Chromium keeps no cookie longer (RFC 6265bis caps Max-Age at 400 days); a sign-in within them renews it. */
export const DEVICE_COOKIE_MAX_AGE_SECONDS = 400 * 24 * 60 * 60

/**
 * Sent to the login route only, with the refresh cookie's other attributes: HttpOnly, Secure and SameSite as
 * configured (Partitioned with SameSite=None, in the app's own jar).
 */
export default fp(async function deviceCookiePlugin (fastify) {
  const { cookie, refresh } = fastify.config
  const codec = new DeviceCookieCodec(fastify.secrets.refreshTokenSecret, refresh.acceptedSecrets)
  const serializeCookie = await cookieSerializer(fastify)
  const name = deviceCookieName(cookie.name)
  const attributes = {
    httpOnly: true,
    secure: cookie.secure,
    sameSite: cookie.sameSite,
    path: `${cookie.path}/login`,
    partitioned: cookie.sameSite === 'none',
    maxAge: DEVICE_COOKIE_MAX_AGE_SECONDS
  }
  const prefix = `${name}=`

  fastify.decorate('deviceCookie', {
    read (request: FastifyRequest, userId: string): KnownDevice | null {
      const header = request.headers.cookie
      if (header === undefined || !header.includes(prefix)) return null
      // Every cookie of the name: one planted beside the browser's own (cookie tossing) must not hide it.
      for (const pair of header.split(';')) {
        const trimmed = pair.trim()
        if (!trimmed.startsWith(prefix)) continue
        const device = codec.open(trimmed.slice(prefix.length))
        if (device?.userId === userId) return device
      }
      return null
    },
    set (reply: FastifyReply, userId: string) {
      reply.header('set-cookie', serializeCookie(name, codec.mint(userId), attributes))
    }
  })
}, { name: 'device-cookie', dependencies: ['config', 'secrets'], fastify: '5.x' })
