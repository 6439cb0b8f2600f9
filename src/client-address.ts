import { isIPv6 } from 'node:net'
import { Address6 } from 'ip-address'

/**
 * What a limit counts a client by, the way @fastify/rate-limit counts one: an IPv4 address as it is, an IPv6
 * address by its /64 network, an IPv4-mapped IPv6 address as its IPv4 one. A host or subscriber is given a whole
 * /64 (RFC 6177) and takes a new address in it at will: a limit per IPv6 address would see each request of one
 * attacker as a new client.
 */
export function clientKey (ip: string): string {
  if (!isIPv6(ip)) return ip.toLowerCase()
  const address = new Address6(ip)
  if (address.isMapped4()) return address.to4().correctForm()
  return new Address6(`${ip}/64`).startAddress().correctForm()
}
