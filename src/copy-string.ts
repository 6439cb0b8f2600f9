/**
 * A copy of `s` that shares no memory with it. V8 makes a substring of 13 or more characters a view into the
 * string it was cut from (a "sliced string"), which keeps that whole string alive: a family id cut from a refresh
 * token keeps the request's whole `Cookie` header alive — up to 8 kB, with the token and every other cookie of the
 * site — for as long as the id is kept. Tables that keep a request's strings after the request (ended families,
 * revocations) keep copies. Each comes back exactly, lone surrogates included, and as compact as it was: one byte a
 * character when every character fits one (ids, addresses and user agents do), two otherwise.
 */
export function copyString (s: string): string {
  // Latin-1 keeps what fits one byte exactly and garbles the rest: a copy equal to `s` is exact. (No regular expression
  // decides this: V8 keeps the last string a regular expression ran on alive, until the next.)
  const oneByte = Buffer.from(s, 'latin1').toString('latin1')
  return oneByte === s ? oneByte : Buffer.from(s, 'utf16le').toString('utf16le')
}
