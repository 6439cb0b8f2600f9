import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { DeviceCookieCodec, type KnownDevice } from '../src/device-cookie.js'
import { cookieAttributes, cookieSerializer, cookieValues } from './refresh-cookie.js'

/** The devices a request's cookies name, one per account, as sent: the entries this service sealed, nothing else. */
export type PresentedDevices = ReadonlyArray<{ entry: string, device: KnownDevice }>

declare module 'fastify' {
  interface FastifyInstance {
    /** The browsers an account has signed in from (src/device-cookie.ts): login limits their failures per browser. */
    deviceCookie: {
      read (request: FastifyRequest): PresentedDevices
      /** The browser's cookie after a sign-in of `userId` in it: a new device for that account, the others kept. */
      set (reply: FastifyReply, presented: PresentedDevices, userId: string): void
    }
  }
}

/** The device `presented` names for `userId`; null when it names none. */
export function deviceOf (presented: PresentedDevices, userId: string): KnownDevice | null {
  return presented.find((p) => p.device.userId === userId)?.device ?? null
}

/** Named after the refresh cookie, so services that give theirs other names on one host keep theirs apart too. */
export function deviceCookieName (refreshCookieName: string): string {
  return `${refreshCookieName}_device`
}

/** Chromium keeps no cookie longer (RFC 6265bis caps Max-Age at 400 days); a sign-in within them renews it. */
const DEVICE_COOKIE_MAX_AGE_SECONDS = 400 * 24 * 60 * 60
/**
 * Accounts one browser is known for at once, most recent sign-in first: a family's computer, a shop's till. Each
 * entry is 68 characters.
 */
const ACCOUNTS_PER_BROWSER = 5
const SEPARATOR = '~'

/**
 * Sent to the login route only, with the refresh cookie's other attributes (cookieAttributes). One cookie lists the
 * browser's device for each account signed in there (`~` between them), so one account's sign-in does not make
 * another's owner unknown.
 */
export default fp(async function deviceCookiePlugin (fastify) {
  const { cookie, refresh } = fastify.config
  const codec = new DeviceCookieCodec(fastify.secrets.refreshTokenSecret, refresh.acceptedSecrets)
  const serializeCookie = await cookieSerializer(fastify)
  const name = deviceCookieName(cookie.name)
  const attributes = { ...cookieAttributes(cookie, `${cookie.path}/login`), maxAge: DEVICE_COOKIE_MAX_AGE_SECONDS }
  const prefix = `${name}=`

  fastify.decorate('deviceCookie', {
    read (request: FastifyRequest): PresentedDevices {
      const found: Array<{ entry: string, device: KnownDevice }> = []
      // Every cookie of the name: one planted beside the browser's own must not hide it.
      for (const value of cookieValues(request.headers.cookie, prefix)) {
        for (const entry of value.split(SEPARATOR)) {
          const device = codec.open(entry)
          if (device !== null && deviceOf(found, device.userId) === null) found.push({ entry, device })
        }
      }
      return found
    },
    set (reply: FastifyReply, presented: PresentedDevices, userId: string) {
      const others = presented.filter((p) => p.device.userId !== userId).slice(0, ACCOUNTS_PER_BROWSER - 1)
      const value = [codec.mint(userId), ...others.map((p) => p.entry)].join(SEPARATOR)
      reply.header('set-cookie', serializeCookie(name, value, attributes))
    }
  })
}, { name: 'device-cookie', dependencies: ['config', 'secrets'], fastify: '5.x' })
