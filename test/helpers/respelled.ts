const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/**
 * Another spelling of the same bytes, or null when there is none: a base64url string whose length is not a multiple
 * of 4 ends in a character with bits no byte uses, which decoders ignore.
 */
export function respelled (encoded: string): string | null {
  if (encoded.length % 4 === 0) return null
  return encoded.slice(0, -1) + BASE64URL[BASE64URL.indexOf(encoded.at(-1) as string) ^ 1]
}
