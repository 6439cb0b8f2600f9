import { clientAddress } from './client-address.js'
import { clampUserAgent, type SessionMeta } from './family-store.js'

/** What a session records about the client that used it last (any Fastify request fits). */
export function sessionMeta (request: { headers: { 'user-agent'?: string | undefined }, ip: string }): SessionMeta {
  return { userAgent: clampUserAgent(request.headers['user-agent']), ip: clientAddress(request.ip) }
}
