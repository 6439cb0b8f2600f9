import { normalizeIP } from '@fastify/rate-limit'
import type { FastifyRequest } from 'fastify'
import { copyString } from './copy-string.js'
import { clampPrintable } from './family-store.js'

const IPV4_MAPPED = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i
// An address with the client's port, as Azure Application Gateway writes each X-Forwarded-For entry: 203.0.113.7:51234,
// [2001:db8::1]:51234 (RFC 7239's form), and an IPv6 address in brackets without one.
const IPV4_WITH_PORT = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/
const BRACKETED = /^\[([^\]]*)\](?::\d{1,5})?$/

/**
 * Longest client address kept or counted: a textual IPv6 address with an IPv4 tail is at most 45 characters, and a
 * session's fields of at most 64 bytes keep its Redis hash in the compact listpack encoding (src/family-store.ts).
 */
export const MAX_ADDRESS_LENGTH = 64

/**
 * A client's address as a person reads it, in the session list and the logs. A dual-stack listener (`HOST=::`, as the
 * image sets) sees an IPv4 client at an IPv4-mapped IPv6 address, `::ffff:203.0.113.7`: that is the IPv4 client
 * 203.0.113.7. A port a proxy wrote beside the address is not part of it: counted with it, each connection of one
 * client would be another client to the rate limits. Every other address is kept as it is.
 *
 * Behind a trusted proxy, the address is the X-Forwarded-For entry the proxy wrote, and it may be no address: Squid's
 * `unknown`, an obfuscated identifier (RFC 7239 §6.3), or, where TRUST_PROXY counts more hops than there are proxies,
 * the client's own text, up to the 16 kB of a header, which every session it refreshed kept in Redis and every log line
 * repeated. Such a value is kept as a user agent is (clampPrintable): printable ASCII, bounded.
 */
export function clientAddress (ip: string | undefined): string {
  // Fastify reads the address from the socket, which has none once the client has hung up, unless it was read before.
  if (ip === undefined) return ''
  const address = withoutPort(ip)
  const mapped = IPV4_MAPPED.exec(address)?.[1]
  if (mapped !== undefined) return mapped
  return clampPrintable(address, MAX_ADDRESS_LENGTH)
}

/** An X-Forwarded-For entry without the port a proxy may have written beside its address, and without brackets. */
export function withoutPort (entry: string): string {
  return IPV4_WITH_PORT.exec(entry)?.[1] ?? BRACKETED.exec(entry)?.[1] ?? entry
}

/**
 * The address a client is counted by, in rate limits and failed sign-ins: an IPv6 client by its /64. A copy: kept
 * in memory by the embedded store and the refresh limiter, an entry cut from X-Forwarded-For would keep the whole
 * header alive with it (src/copy-string.ts).
 */
export function countedAddress (ip: string | undefined): string {
  return copyString(normalizeIP(clientAddress(ip)))
}

/**
 * The address of the peer that sent a request naming its client in X-Forwarded-For, when TRUST_PROXY does not trust
 * that peer, so that the peer is the client counted; null otherwise. Behind a proxy TRUST_PROXY does not name (false,
 * its default, or a list without it), the proxy is every client: they share one count of each limit per address.
 */
export function untrustedForwarder (request: FastifyRequest): string | null {
  if (request.headers['x-forwarded-for'] === undefined) return null
  const peer = request.socket.remoteAddress
  return peer !== undefined && request.ip === peer ? clientAddress(peer) : null
}
