const IPV4_MAPPED = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i

/**
 * A client's address as a person reads it, in the session list and the logs. A dual-stack listener (`HOST=::`, as the
 * image sets) sees an IPv4 client at an IPv4-mapped IPv6 address, `::ffff:203.0.113.7`: that is the IPv4 client
 * 203.0.113.7. Every other address is kept as it is.
 */
export function clientAddress (ip: string): string {
  return IPV4_MAPPED.exec(ip)?.[1] ?? ip
}
