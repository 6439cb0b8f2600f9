import { isUtf8 } from 'node:buffer'
import { isIP } from 'node:net'
import { readFileSync } from 'node:fs'
import { envSchema } from 'env-schema'
import { Type, type Static } from 'typebox'
import { usableCores } from './cpu-quota.js'
import { unreadVariables } from './misspelled-variables.js'
import { isPem, parseKeySet, SigningKeyError, type AsymmetricAlgorithm, type SigningKeySet } from './signing-keys.js'

// Each pattern's `description` is what a refusal says the variable must be: a person reads it, not the pattern.
const RATE = { pattern: '^[0-9]{1,9}/[0-9]{1,7}$', description: '"max/windowSeconds", such as 30/60' }

/**
 * Every environment variable the service reads, with its default and bounds.
 * Durations are integer seconds unless the name says otherwise.
 */
export const EnvSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], { default: 'development' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  /** A port of its own for GET /metrics (on HOST), which then leaves the service's port; unset: on the service's port. */
  METRICS_PORT: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  LOG_LEVEL: Type.Union([Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'), Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent')], { default: 'info' }),
  /** notable: every request except the successes of refresh, /me, health and JWKS (those at debug); all: every request at info. */
  ACCESS_LOG: Type.Union([Type.Literal('notable'), Type.Literal('all')], { default: 'notable' }),

  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://', description: 'a redis:// or rediss:// URL' })),
  REDIS_KEY_PREFIX: Type.String({ pattern: '^[A-Za-z0-9:_-]{1,32}$', description: '1 to 32 of A-Z a-z 0-9 : _ -', default: 'auth:' }),
  REDIS_COMMAND_TIMEOUT_MS: Type.Integer({ minimum: 50, maximum: 10_000, default: 500 }),
  /** Comma-separated host:port of Redis Sentinels: the master is whichever they name, followed through failovers. */
  REDIS_SENTINELS: Type.Optional(Type.String()),
  REDIS_SENTINEL_MASTER: Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$', description: '1 to 64 of A-Z a-z 0-9 . _ -', default: 'mymaster' }),
  /** The Sentinels' own ACL user for the service, when they have ACL users (unset: their default user). */
  REDIS_SENTINEL_USERNAME: Type.Optional(Type.String({ pattern: '^\\S{1,128}$', description: '1 to 128 characters, no space' })),
  REDIS_SENTINEL_PASSWORD: Type.Optional(Type.String()),
  /** Comma-separated host:port of Redis Cluster nodes to start from: the client learns the others. */
  REDIS_CLUSTER_NODES: Type.Optional(Type.String()),

  JWT_SECRET: Type.Optional(Type.String()),
  /** A JWK Set of private signing keys (ES256 / EdDSA), each with kid and alg (or read from JWT_KEYS_FILE: FROM_FILE). */
  JWT_KEYS: Type.Optional(Type.String()),
  JWT_SIGNING_KID: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$', description: '1 to 64 of A-Z a-z 0-9 . _ -' })),
  /** Algorithm of the key generated outside production when no keys are configured. */
  JWT_ALGORITHM: Type.Union([Type.Literal('ES256'), Type.Literal('EdDSA')], { default: 'ES256' }),
  /** Where generated key material is kept outside production when instances share Redis (relative: to the working directory). */
  DEV_SECRETS_FILE: Type.String({ minLength: 1, default: '.dev-secrets.json' }),
  JWT_CLOCK_TOLERANCE: Type.Integer({ minimum: 0, maximum: 300, default: 5 }),
  ACCESS_TOKEN_CACHE_SIZE: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 10_000 }),
  JWT_ISSUER: Type.String({ minLength: 1, default: 'auth-service' }),
  JWT_AUDIENCE: Type.String({ minLength: 1, default: 'auth-service' }),
  ACCESS_TOKEN_TTL: Type.Integer({ minimum: 1, maximum: 86_400, default: 600 }),
  ACCESS_TOKEN_REVOCATION: Type.Union([Type.Literal('instant'), Type.Literal('off')], { default: 'instant' }),

  REFRESH_TOKEN_SECRET: Type.Optional(Type.String()),
  /** Comma-separated: secrets whose sessions are accepted besides REFRESH_TOKEN_SECRET's (the next one, the previous one). */
  REFRESH_TOKEN_ACCEPTED_SECRETS: Type.Optional(Type.String()),
  REFRESH_IDLE_TTL: Type.Integer({ minimum: 1, maximum: 31_536_000, default: 604_800 }),
  REFRESH_ABSOLUTE_TTL: Type.Integer({ minimum: 1, maximum: 31_536_000, default: 2_592_000 }),
  REFRESH_REUSE_GRACE: Type.Integer({ minimum: 0, maximum: 300, default: 10 }),
  MAX_SESSIONS_PER_USER: Type.Integer({ minimum: 1, maximum: 10_000, default: 100 }),

  COOKIE_NAME: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', description: '1 to 64 of A-Z a-z 0-9 _ . -' })),
  COOKIE_SECURE: Type.Boolean({ default: true }),
  COOKIE_SAMESITE: Type.Union([Type.Literal('strict'), Type.Literal('lax'), Type.Literal('none')], { default: 'strict' }),
  /** The path a proxy serves the service under and strips before passing requests on (`/api`); empty: none. */
  PUBLIC_PATH_PREFIX: Type.String({ pattern: "^(/[A-Za-z0-9._~!$&'()*+=:@%-]+)*$", description: 'a path such as /api: segments of URL path characters, no trailing /', default: '' }),

  /** false | hop count | comma-separated IPs/CIDRs of the proxies whose X-Forwarded-For is believed. */
  TRUST_PROXY: Type.String({ pattern: '^(false|[0-9]{1,2}|[0-9a-fA-F:.,/ ]+)$', description: 'false, a hop count, or a comma-separated list of addresses and CIDR ranges', default: 'false' }),
  /** Comma-separated browser origins allowed to call the API with credentials. */
  ALLOWED_ORIGINS: Type.String({ default: '' }),

  // Rate limits, each "max/windowSeconds".
  RATE_LIMIT_LOGIN_IP: Type.String({ ...RATE, default: '30/60' }),
  RATE_LIMIT_LOGIN_ACCOUNT_IP: Type.String({ ...RATE, default: '10/900' }),
  RATE_LIMIT_LOGIN_ACCOUNT: Type.String({ ...RATE, default: '100/900' }),
  RATE_LIMIT_REGISTER_IP: Type.String({ ...RATE, default: '20/3600' }),
  RATE_LIMIT_PASSWORD_IP: Type.String({ ...RATE, default: '10/900' }),
  RATE_LIMIT_REFRESH_IP: Type.String({ ...RATE, default: '12000/60' }),
  RATE_LIMIT_REFRESH_SESSION: Type.String({ ...RATE, default: '60/60' }),
  RATE_LIMIT_NOT_FOUND_IP: Type.String({ ...RATE, default: '60/60' }),
  /** Comma-separated IPs/CIDRs the per-address request limits do not count: an office's NAT, a load generator. */
  RATE_LIMIT_EXEMPT: Type.String({ pattern: '^[0-9a-fA-F:.,/ ]*$', description: 'a comma-separated list of addresses and CIDR ranges', default: '' }),

  ARGON2_MEMORY_COST: Type.Integer({ minimum: 8192, maximum: 1_048_576, default: 19_456 }),
  ARGON2_TIME_COST: Type.Integer({ minimum: 1, maximum: 10, default: 2 }),
  ARGON2_PARALLELISM: Type.Integer({ minimum: 1, maximum: 16, default: 1 }),
  ARGON2_MAX_CONCURRENCY: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
  ARGON2_MAX_QUEUE: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000 })),
  ARGON2_THREAD_NICE: Type.Integer({ minimum: 0, maximum: 19, default: 19 }),

  SHUTDOWN_TIMEOUT: Type.Integer({ minimum: 1, maximum: 60, default: 8 })
})

export type Env = Static<typeof EnvSchema>

/** The validated, typed configuration the whole service reads from. */
export interface Config {
  env: Env['NODE_ENV']
  isProduction: boolean
  port: number
  host: string
  /** Where GET /metrics is served when not on `port`; null: on `port`, with the API. */
  metricsPort: number | null
  logLevel: Env['LOG_LEVEL']
  /** 'all': an info line for every request; 'notable': the successes of high-volume routes at debug. */
  accessLog: Env['ACCESS_LOG']
  redis: RedisConfig | null
  jwt: {
    /** HS256 secret (JWT_SECRET); null when asymmetric keys are used or one is to be generated. */
    secret: string | null
    /** 'hs256': JWT_SECRET; 'keys': JWT_KEYS / JWT_KEYS_FILE; 'generate': outside production, no keys given. */
    keyMode: 'hs256' | 'keys' | 'generate'
    /** The validated key set when keyMode is 'keys'. */
    keySet: SigningKeySet | null
    generateAlgorithm: AsymmetricAlgorithm
    clockToleranceSeconds: number
    verifiedTokenCacheSize: number
    issuer: string
    audience: string
    accessTokenTtlSeconds: number
    /** 'instant': revoked sessions' access tokens fail everywhere within a second; 'off': they live out their TTL. */
    revocation: 'instant' | 'off'
  }
  /** Outside production with Redis: the file of generated key material that local instances share (plugins/secrets.ts). */
  devSecretsFile: string
  refresh: {
    /** New sessions begin under it; null outside production when unset (one is generated). */
    secret: string | null
    /** Sessions begun under these keep working, each under its own secret (README: rotating the refresh-token secret). */
    acceptedSecrets: string[]
    idleTtlSeconds: number
    absoluteTtlSeconds: number
    reuseGraceSeconds: number
    maxFamiliesPerUser: number
  }
  /** `path`: where browsers reach the auth routes, PUBLIC_PATH_PREFIX included. */
  cookie: { name: string, secure: boolean, sameSite: 'strict' | 'lax' | 'none', path: string }
  /** PUBLIC_PATH_PREFIX: the path clients reach the service under ('' when they reach it as it serves itself). */
  publicPathPrefix: string
  /** Fastify's trustProxy: false, a hop count, or the trusted proxy addresses. */
  trustProxy: false | number | string[]
  allowedOrigins: string[]
  /**
   * RATE_LIMIT_EXEMPT: the addresses and ranges the per-address request limits (LOGIN_IP, REGISTER_IP, PASSWORD_IP,
   * REFRESH_IP, NOT_FOUND_IP) do not count; the failure limits count them.
   */
  rateLimitExempt: string[]
  rateLimits: {
    loginIp: RateLimit
    /** Failed password checks per account from one client address (login), and per user (password change). */
    loginAccountIp: RateLimit
    /** Failed logins per account from every address together: distributed guessing. */
    loginAccount: RateLimit
    registerIp: RateLimit
    passwordIp: RateLimit
    refreshIp: RateLimit
    refreshSession: RateLimit
    notFoundIp: RateLimit
  }
  /** threadNice: the nice value of the threads that hash (src/thread-priority.ts); 0 leaves them be. */
  argon2: { memoryCost: number, timeCost: number, parallelism: number, maxConcurrency: number, maxQueue: number, threadNice: number }
  shutdownTimeoutSeconds: number
  /**
   * Variables set that this configuration does not read (a misspelt name; one that does not apply to the rest, such as
   * JWT_ALGORITHM beside configured keys), each a sentence naming them, never a value: logged at start (plugins/config.ts).
   */
  warnings: string[]
  /**
   * The value of every secret configured: JWT_SECRET, the refresh-token secrets, each JWT_KEYS key's private part `d`,
   * the Redis passwords (REDIS_URL's as written and decoded). The log never shows them (src/log-redaction.ts).
   */
  secrets: string[]
}

export interface RateLimit {
  max: number
  windowSeconds: number
}

export interface RedisConfig {
  /** With sentinel or cluster, only its credentials (and database) are used: the address comes from them. */
  url: string
  keyPrefix: string
  commandTimeoutMs: number
  sentinel: { nodes: HostPort[], master: string, username: string | undefined, password: string | undefined } | null
  cluster: { nodes: HostPort[] } | null
}

export interface HostPort { host: string, port: number }

/**
 * Every problem found in the configuration, each naming its variable: an operator fixes them in one go. `hints`: what
 * else was noticed that may be the cause (a misspelt name: the variable it meant was then not set).
 */
export class ConfigError extends Error {
  override name = 'ConfigError'
  readonly problems: string[]

  constructor (problems: string | string[], hints: readonly string[] = []) {
    const list = typeof problems === 'string' ? [problems] : problems
    const message = list.length === 1 ? list[0] : `${list.length} problems: ${list.map((p, i) => `(${i + 1}) ${p}`).join('; ')}`
    super(hints.length === 0 ? message : `${message}. Also: ${hints.join('; ')}`)
    this.problems = list
  }
}

/** What the messages use of a variable's schema. */
interface PropertySchema { anyOf?: Array<{ const?: unknown }>, type?: string, description?: string }
const PROPERTIES = EnvSchema.properties as Record<string, PropertySchema | undefined>

/** The values a variable of choices takes (NODE_ENV, LOG_LEVEL, ...); undefined for any other. */
function choicesOf (name: string): string[] | undefined {
  return PROPERTIES[name]?.anyOf?.map((choice) => String(choice.const))
}

/**
 * A choice or a boolean spelled in another case, as its value: `COOKIE_SAMESITE=Strict` (how Set-Cookie headers and
 * their documentation write it), `LOG_LEVEL=WARN`, `JWT_ALGORITHM=eddsa`, `COOKIE_SECURE=False`. Anything else as given.
 */
function canonicalValue (name: string, value: string): string {
  const choices = PROPERTIES[name]?.type === 'boolean' ? ['true', 'false'] : choicesOf(name)
  return choices?.find((choice) => choice.toLowerCase() === value.toLowerCase()) ?? value
}

/**
 * Why an integer variable's value is refused before Ajv reads it, or null. Ajv coerces a string to a number as
 * JavaScript's `==` does: a blank " " reads as 0 (PORT: any free port; REFRESH_REUSE_GRACE: no grace at all;
 * ARGON2_MAX_QUEUE: every sign-in past the running ones refused), "0x10" as 16, "6e2" as 600, " 60 " as 60. An integer
 * is taken as decimal digits only, as booleans and choices are taken without spaces; a minus sign is left to the
 * schema's minimum, which says what the variable takes.
 */
function integerProblem (name: string, value: string): string | null {
  if (PROPERTIES[name]?.type !== 'integer' || /^-?[0-9]+$/.test(value)) return null
  if (value.trim() === '') return `${name} is blank: give it in decimal digits, or leave it empty for its default`
  return `${name} must be an integer in decimal digits${/\s/.test(value) ? ', without spaces' : ''}`
}

/** The variable an Ajv error is about: its instancePath is `/NAME`. */
function variableOf (error: SchemaError): string {
  return error.instancePath.slice(1)
}

/**
 * The schema's refusals, one per variable in the schema's order, saying what it takes where Ajv says "must be equal to
 * constant" per choice; `before` holds those refused before Ajv read them.
 */
function schemaProblems (errors: SchemaError[], before: ReadonlyMap<string, string>): string[] {
  const problems = new Map(before)
  for (const error of errors) {
    const { keyword, message } = error
    const name = variableOf(error)
    if (problems.has(name)) continue
    const property = PROPERTIES[name]
    const choices = choicesOf(name)
    const must = choices !== undefined
      ? `must be one of ${choices.join(', ')}`
      : property?.type === 'boolean'
        ? 'must be true or false'
        : keyword === 'pattern' && property?.description !== undefined ? `must be ${property.description}` : message ?? 'is invalid'
    problems.set(name, `${name} ${must}`)
  }
  // An error about no one variable (instancePath "") goes last.
  const order = (name: string): number => {
    const index = SCHEMA_ORDER.indexOf(name)
    return index === -1 ? SCHEMA_ORDER.length : index
  }
  return [...problems].sort(([a], [b]) => order(a) - order(b)).map(([, problem]) => problem)
}

const SCHEMA_ORDER = Object.keys(PROPERTIES)

/** What of an Ajv error the messages use. */
interface SchemaError { instancePath: string, keyword: string, message?: string }

/**
 * The variables that carry secrets, each of which may instead be read from the file `<NAME>_FILE` names: how
 * orchestrators hand a container its secrets (Docker and Kubernetes mount them as files), out of the process's
 * environment, which `docker inspect` and /proc/<pid>/environ show.
 */
export const FROM_FILE = ['JWT_KEYS', 'JWT_SECRET', 'REFRESH_TOKEN_SECRET', 'REFRESH_TOKEN_ACCEPTED_SECRETS', 'REDIS_URL', 'REDIS_SENTINEL_PASSWORD'] as const

/** Every variable the service reads: the schema's, and the `<NAME>_FILE` of each secret. */
export const KNOWN_VARIABLES: readonly string[] = [...Object.keys(EnvSchema.properties), ...FROM_FILE.map((name) => `${name}_FILE`)]

const MIN_SECRET_BYTES = 32
// Values copied from .env.example must never reach production.
const PLACEHOLDER = /change[-_ ]?me|example|placeholder/i

function checkSecret (name: string, value: string | undefined, production: boolean): string | null {
  if (value === undefined || value === '') {
    if (production) throw new ConfigError(`${name} is required in production (at least ${MIN_SECRET_BYTES} bytes, shared by every instance)`)
    return null
  }
  // What the process environment held as bytes that are not UTF-8 (`"$(head -c 32 /dev/urandom)"`) Node reads as U+FFFD,
  // each such byte's bits lost, all alike; U+FFFD itself no one types into a secret.
  if (value.includes('\uFFFD')) {
    throw new ConfigError(`${name} holds U+FFFD, what bytes that are not UTF-8 are read as (a binary secret?): give it as text, generated with: openssl rand -base64 48`)
  }
  if (Buffer.byteLength(value, 'utf8') < MIN_SECRET_BYTES) {
    throw new ConfigError(`${name} must be at least ${MIN_SECRET_BYTES} bytes`)
  }
  if (production && PLACEHOLDER.test(value)) {
    throw new ConfigError(`${name} still holds the placeholder from .env.example; generate one with: openssl rand -base64 48`)
  }
  const pattern = production ? patternOf(value) : null
  if (pattern !== null) {
    throw new ConfigError(`${name} is ${pattern}, which no generator of secrets makes and anyone can guess; generate one with: openssl rand -base64 48`)
  }
  return value
}

/** Django refuses a SECRET_KEY of fewer distinct characters than this (security.W009). */
const MIN_DISTINCT_CHARACTERS = 5

/**
 * What makes a secret long enough by its bytes guessable all the same: a few characters (`aaaa…`, `0101…`), or one
 * short text said again and again (`secretsecret…`), a period of at most half its length. A random secret has
 * neither (a base64 one of 32 bytes, about 28 distinct characters and no period); null when it has neither.
 */
export function patternOf (value: string): string | null {
  const characters = [...value]
  const distinct = new Set(characters).size
  if (distinct < MIN_DISTINCT_CHARACTERS) return `made of ${distinct === 1 ? 'one character' : `${distinct} distinct characters`} (a random one has far more)`
  // The shortest period, by the prefix function: the longest proper prefix that is also a suffix.
  const border = new Array<number>(characters.length).fill(0)
  for (let i = 1, k = 0; i < characters.length; i++) {
    while (k > 0 && characters[i] !== characters[k]) k = border[k - 1] ?? 0
    if (characters[i] === characters[k]) k++
    border[i] = k
  }
  const period = characters.length - (border.at(-1) ?? 0)
  return period * 2 <= characters.length ? `one text of ${period} characters repeated` : null
}

// C0 and C1 control characters and DEL.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/

/**
 * JWT_ISSUER or JWT_AUDIENCE as every token will carry it and every resource server compares it: whitespace at an
 * end, or a control character (the \r of a file written on Windows), would make each token refused there. Not a
 * secret: quoted. A value with ':' must be a URI (RFC 7519 §2, StringOrURI).
 */
function checkClaimValue (name: string, value: string): string {
  if (value.trim() !== value || CONTROL.test(value)) {
    throw new ConfigError(`${name} ${JSON.stringify(value)} begins or ends with whitespace, or holds a control character (the line ending of a file written on Windows?): every token would carry it, and a resource server that expects the value without it refuses them`)
  }
  if (value.includes(':') && (/\s/.test(value) || !URL.canParse(value))) {
    throw new ConfigError(`${name} ${JSON.stringify(value)} holds ":" and is not a URI, which RFC 7519 asks of such a value (https://auth.example.com, or a name without ":")`)
  }
  return value
}

/**
 * OWASP's argon2id configurations of equal strength (Password Storage Cheat Sheet, 1 degree of parallelism): the
 * memory (KiB) each takes at 1, 2, 3, 4 and 5 passes; 19 MiB at 2 passes is its minimum, and this service's default.
 */
const OWASP_ARGON2ID_MEMORY_BY_PASSES = [47_104, 19_456, 12_288, 9_216, 7_168] as const

/**
 * Why argon2id at these costs is weaker than each of OWASP's configurations, which production refuses: a stolen
 * database of such hashes is guessed faster offline than OWASP allows for. Null when it is not.
 */
function argon2BelowOwasp (memoryCost: number, timeCost: number): string | null {
  const floor = OWASP_ARGON2ID_MEMORY_BY_PASSES[Math.min(timeCost, OWASP_ARGON2ID_MEMORY_BY_PASSES.length) - 1] ?? 0
  if (memoryCost >= floor) return null
  return `ARGON2_MEMORY_COST=${memoryCost} with ARGON2_TIME_COST=${timeCost} is weaker than OWASP's argon2id minimum (at ${timeCost} ${timeCost === 1 ? 'pass' : 'passes'}, ${floor} KiB; the default is 19456 KiB at 2), which production refuses: sign-ins cost less with fewer hashes at once (ARGON2_MAX_CONCURRENCY), not weaker ones`
}

/**
 * A value between two quotes of one kind, which the tool that set it kept: no setting of this service begins and ends
 * with a quote, and a secret so written would be another secret wherever it is set without them.
 */
const QUOTED = /^(["'])[\s\S]*\1$/

function writtenInQuotes (name: string): string {
  return `${name} is written in quotes, which were kept as part of its value: remove them (docker's --env-file and the list form of Compose's environment, - ${name}="…", keep them; a shell and Node's --env-file do not)`
}

/** Every entry but the first is one more HMAC for each token that opens under none of them (a forged one). */
const MAX_ACCEPTED_SECRETS = 4

function parseAcceptedSecrets (value: string | undefined, current: string | null, jwtSecret: string | null, production: boolean): string[] {
  if (value === undefined) return []
  const name = 'REFRESH_TOKEN_ACCEPTED_SECRETS'
  if (current === null) {
    throw new ConfigError(`${name} needs REFRESH_TOKEN_SECRET: the secret new sessions begin under`)
  }
  const count = value.split(',').length
  if (count > MAX_ACCEPTED_SECRETS) {
    throw new ConfigError(`${name} holds ${count} secrets; at most ${MAX_ACCEPTED_SECRETS} (a rotation needs one)`)
  }
  // Named by position (`entry`), never by value.
  return listOf(name, 'secret', value, (secret, entry, i, all) => {
    checkSecret(entry, secret, production)
    if (secret === current) throw new ConfigError(`${entry} is REFRESH_TOKEN_SECRET itself; list only the other secrets`)
    if (secret === jwtSecret) throw new ConfigError(`${entry} is JWT_SECRET: one key per purpose`)
    if (all.indexOf(secret) !== i) throw new ConfigError(`${entry} repeats an earlier one`)
    return secret
  })
}

const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/

/**
 * REDIS_URL as the Redis client will read it (null when unset), read here first: a URL it cannot parse makes it throw
 * an error that carries the URL, password and all. Refused by its parts, never quoted: the URL may hold the password.
 */
function parseRedisUrl (value: string | undefined): URL | null {
  if (value === undefined) return null
  let url: URL | null = null
  try { url = new URL(value) } catch {}
  // A # begins a fragment, which a Redis URL never has: it is a password's, unencoded, and the rest of the URL is lost.
  if (url === null || url.hash !== '') {
    throw new ConfigError('REDIS_URL is not a URL: in a password, a character URLs reserve must be percent-encoded (# as %23, / as %2F, ? as %3F, % as %25)')
  }
  try {
    decodeURIComponent(url.username)
    decodeURIComponent(url.password)
  } catch {
    throw new ConfigError('REDIS_URL: its user name or password holds a % that begins no percent-encoding (write % as %25)')
  }
  if (!/^\/?([0-9]+)?$/.test(url.pathname)) {
    throw new ConfigError('REDIS_URL: what follows the host must be a database number (redis://host:6379/2), or nothing')
  }
  checkRedisUrlQuery(url.searchParams)
  return url
}

/** Where the option a query parameter would set is set instead. */
const REDIS_URL_QUERY_INSTEAD: Record<string, string> = {
  keyPrefix: 'set REDIS_KEY_PREFIX',
  db: 'write the database as the path (redis://host:6379/2)',
  username: 'write it before the host (redis://user:password@host)',
  password: 'write it before the host (redis://user:password@host)',
  tls: 'write rediss:// for TLS',
  commandTimeout: 'set REDIS_COMMAND_TIMEOUT_MS',
  connectTimeout: 'set REDIS_COMMAND_TIMEOUT_MS'
}

/**
 * ioredis takes each query parameter of its URL as an option, over those the service gives it: `?commandTimeout=`
 * or `?enableOfflineQueue=true` undid failing fast when Redis stalls, and a `?keyPrefix=`, put before
 * REDIS_KEY_PREFIX on the keys a command names but not on those the scripts derive, left the session list empty and
 * every refresh token working after a logout of all devices. Only `family`, the address family a host name is
 * resolved to (0 both, 4, 6), is the operator's to choose.
 */
function checkRedisUrlQuery (query: URLSearchParams): void {
  for (const [name, value] of query) {
    if (name === 'family' && /^[046]$/.test(value)) continue
    if (name === 'family') throw new ConfigError('REDIS_URL: ?family= must be 0 (IPv4 or IPv6), 4 or 6: the address family its host name is resolved to')
    const instead = Object.hasOwn(REDIS_URL_QUERY_INSTEAD, name) ? REDIS_URL_QUERY_INSTEAD[name] : undefined
    throw new ConfigError(instead !== undefined
      ? `REDIS_URL: ?${name}= is refused: ${instead}`
      : 'REDIS_URL: its query (?…) would set options of the Redis client, which the service sets itself: only ?family= (0, 4 or 6) may be given')
  }
}

function parseSentinels (env: Env): RedisConfig['sentinel'] {
  if (env.REDIS_SENTINELS === undefined) {
    if (env.REDIS_SENTINEL_PASSWORD !== undefined) throw new ConfigError('REDIS_SENTINEL_PASSWORD needs REDIS_SENTINELS')
    if (env.REDIS_SENTINEL_USERNAME !== undefined) throw new ConfigError('REDIS_SENTINEL_USERNAME needs REDIS_SENTINELS')
    return null
  }
  if (env.REDIS_URL === undefined) {
    throw new ConfigError('REDIS_SENTINELS needs REDIS_URL for the master\'s credentials and database (its host is not used), e.g. redis://:password@mymaster/0')
  }
  return {
    nodes: parseHostPorts('REDIS_SENTINELS', env.REDIS_SENTINELS),
    master: env.REDIS_SENTINEL_MASTER,
    username: env.REDIS_SENTINEL_USERNAME,
    password: env.REDIS_SENTINEL_PASSWORD
  }
}

function parseCluster (env: Env, url: URL | null): RedisConfig['cluster'] {
  if (env.REDIS_CLUSTER_NODES === undefined) return null
  if (env.REDIS_SENTINELS !== undefined) {
    throw new ConfigError('set either REDIS_SENTINELS or REDIS_CLUSTER_NODES, not both: a Redis Cluster fails over by itself')
  }
  if (env.REDIS_URL === undefined) {
    throw new ConfigError('REDIS_CLUSTER_NODES needs REDIS_URL for the nodes\' credentials (its host is not used), e.g. redis://:password@cluster')
  }
  // null: REDIS_URL was refused, and said why.
  if (url !== null && !/^\/?0?$/.test(url.pathname)) {
    throw new ConfigError('REDIS_URL names a database, but a Redis Cluster has only database 0')
  }
  // The cluster's nodes are found by their addresses, given and announced; only REDIS_URL's credentials are read.
  if (url !== null && url.search !== '') {
    throw new ConfigError('REDIS_URL: with REDIS_CLUSTER_NODES only its credentials are read: no query (?…)')
  }
  return { nodes: parseHostPorts('REDIS_CLUSTER_NODES', env.REDIS_CLUSTER_NODES) }
}

function parseHostPorts (name: string, value: string): HostPort[] {
  return listOf(name, 'node', value, (entry) => {
    const match = HOST_PORT.exec(entry)
    const port = Number(match?.[2])
    if (match === null || port < 1 || port > 65_535) {
      throw new ConfigError(`${name}: "${entry}" is not host:port (a comma-separated list of them, IPv6 as [address]:port)`)
    }
    return { host: (match[1] as string).replace(/^\[|\]$/g, ''), port }
  })
}

/**
 * The entries of a comma-separated list, trimmed, each through `parse` (which throws ConfigError to refuse it; `entry`
 * names it by position, for a value that must not be quoted). Every refused entry is reported, and so is every empty
 * one, in every list: an empty entry is most often a variable that expanded to nothing (`${A},${B}` with A unset),
 * and dropping it would start the service without what that variable held.
 */
function listOf<T> (name: string, noun: string, value: string, parse: (value: string, entry: string, index: number, all: string[]) => T): T[] {
  const values = value.split(',').map((s) => s.trim())
  const problems: string[] = []
  const parsed = values.map((item, i) => {
    const entry = `${name} (${noun} ${i + 1} of ${values.length})`
    try {
      if (item === '') throw new ConfigError(`${entry} is empty: a doubled or trailing comma, or a variable that expanded to nothing`)
      return parse(item, entry, i, values)
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      problems.push(...err.problems)
      return undefined as T
    }
  })
  if (problems.length > 0) throw new ConfigError(problems)
  return parsed
}

/**
 * Hashes that may wait for each hashing slot by default (ARGON2_MAX_QUEUE): at the real parameters a hash takes
 * 20–100 ms on the machines measured, so the last in a full queue waits about 1–6 s. Past that a login is answered
 * 503 at once, rather than queued behind work its client may no longer be waiting for.
 */
export const HASHES_QUEUED_PER_SLOT = 64

/**
 * The threads of libuv's pool, from UV_THREADPOOL_SIZE read as libuv reads it (C's `atoi`, src/threadpool.c): the
 * number at its start, after any spaces; 0 when there is none, which libuv runs as 1 thread; at most 1024, which a
 * negative number wraps past. `Number()` read an env file's `UV_THREADPOOL_SIZE=` as 4 threads and "1e2" as 100,
 * where libuv runs 1 (counted in test/src/config.test.ts), and hashing was then given every thread.
 */
export function threadpoolSize (value: string | undefined): number {
  if (value === undefined) return 4
  // C's spaces only (isspace): JavaScript's parseInt also skips Unicode's (a no-break space, pasted), which atoi does not.
  const threads = Number(/^[ \t\n\v\f\r]*([+-]?[0-9]+)/.exec(value)?.[1] ?? 0)
  if (threads === 0) return 1
  return threads < 0 || threads > 1024 ? 1024 : threads
}

/**
 * How many argon2 hashes may run at once by default. Hashes run on libuv's threadpool; one thread of it is
 * always left for the rest of the process (DNS look-ups of Redis hosts among them). With the hashing threads
 * niced below the event loop, one hash more than there are cores keeps every core busy across the hand-off
 * from one hash to the next (bench/README.md: 0.92 of raw argon2id against 0.83 with one per core, in the same
 * rounds); without the nice, one per core, so that hashing cannot crowd out the event loop. The cores are those
 * the process may use: in a container, its CPU quota's (src/cpu-quota.ts).
 */
export function defaultHashConcurrency (machine: { cores: number, threadpoolSize: number, niced: boolean }): number {
  const wanted = machine.cores + (machine.niced ? 1 : 0)
  return Math.max(1, Math.min(wanted, machine.threadpoolSize - 1))
}

/**
 * Validates the environment once and returns the typed configuration.
 * Throws ConfigError with a message naming the variable; never echoes a secret's value.
 */
export function loadConfig (source: NodeJS.ProcessEnv | Record<string, string | undefined> = process.env): Config {
  // Empty strings mean "unset", as in most .env files.
  const given = (name: string): string | undefined => source[name] === '' ? undefined : source[name]
  // Every problem is collected and reported at once: the values as given, then what they mean together. That second
  // round runs on the values the first took, a refused one left to its default, and says nothing of a refused one:
  // `refused` names them.
  const problems: string[] = []
  const refused = new Set<string>()
  /** `parse()`, or `fallback` with the problems it refused the value for noted (any other error is a bug: thrown). */
  const attempt = <T, F>(parse: () => T, fallback: F): T | F => {
    try {
      return parse()
    } catch (err) {
      if (err instanceof ConfigError) problems.push(...err.problems)
      else if (err instanceof SigningKeyError) problems.push(err.message)
      else throw err
      return fallback
    }
  }
  const data: Record<string, string> = {}
  const marked: string[] = []
  // Values refused as they are written, before the schema sees them: said with its refusals, in its order.
  const writtenWrong = new Map<string, string>()
  for (const key of Object.keys(EnvSchema.properties)) {
    const value = given(key)
    const file = (FROM_FILE as readonly string[]).includes(key) ? given(`${key}_FILE`) : undefined
    if (file !== undefined) {
      if (value !== undefined) problems.push(`set ${key} or ${key}_FILE, not both`)
      else {
        attempt(() => {
          const { value, byteOrderMark } = readSecretFile(`${key}_FILE`, file)
          data[key] = value
          // Said: until this was dropped, a secret's mark was part of it, and sessions begun under it end.
          if (byteOrderMark) marked.push(`${key}_FILE: ${file} begins with a byte-order mark (U+FEFF), which is not read as part of ${key}`)
        }, undefined)
      }
      if (data[key] === undefined) refused.add(key)
    } else if (value !== undefined && QUOTED.test(value)) {
      writtenWrong.set(key, writtenInQuotes(key))
      refused.add(key)
    } else if (value !== undefined) {
      data[key] = value
    }
  }

  // Kubernetes gives each pod `<SERVICE>_PORT=tcp://address:port` for every Service of its namespace (service links)
  // unless the pod sets the variable itself: a Service named `metrics` would be read as a port here.
  if (data.METRICS_PORT?.startsWith('tcp://') === true) {
    problems.push('METRICS_PORT holds a Kubernetes service link (tcp://…, from a Service named "metrics" in this namespace), not a port: set METRICS_PORT in the pod spec, or enableServiceLinks: false')
    delete data.METRICS_PORT
    refused.add('METRICS_PORT')
  }

  for (const [key, value] of Object.entries(data)) {
    const problem = integerProblem(key, value)
    if (problem === null) {
      data[key] = canonicalValue(key, value)
      continue
    }
    writtenWrong.set(key, problem)
    Reflect.deleteProperty(data, key)
    refused.add(key)
  }
  const unread = unreadVariables(Object.keys(source).filter((name) => given(name) !== undefined), KNOWN_VARIABLES)
  const misspelt = [
    ...unread.misspelt.map(({ name, meant }) => `${name} is set but not read: did you mean ${meant}?`),
    ...unread.strays.map(({ name, namespace, family }) => `${name} is set but not read: no variable of the service has that name; its ${namespace} variables are ${family.join(', ')}`)
  ]

  // `data` only: env-schema would also merge in process.env, whose empty strings (`METRICS_PORT=` from an env
  // file) then fail validation, and which would leak into a `source` that is not the process's.
  const validated = (): Env => envSchema<Env>({ schema: EnvSchema, data, env: false, dotenv: false })
  let env: Env
  try {
    env = validated()
    problems.push(...schemaProblems([], writtenWrong))
  } catch (err) {
    // Ajv messages name the variable and the rule, not the value.
    const { errors } = err as { errors?: SchemaError[] }
    if (errors === undefined) throw new ConfigError([...problems, ...writtenWrong.values(), (err as Error).message], misspelt)
    problems.push(...schemaProblems(errors, writtenWrong))
    for (const error of errors) {
      refused.add(variableOf(error))
      Reflect.deleteProperty(data, variableOf(error))
    }
    try {
      env = validated()
    } catch {
      throw new ConfigError(problems, misspelt)
    }
  }
  const firstRound = problems.length

  const production = env.NODE_ENV === 'production'
  // The process's own: libuv reads it, whatever `source` this configuration is read from.
  const threads = threadpoolSize(process.env.UV_THREADPOOL_SIZE)
  const maxConcurrency = env.ARGON2_MAX_CONCURRENCY ?? defaultHashConcurrency({
    cores: usableCores(),
    threadpoolSize: threads,
    niced: process.platform === 'linux' && env.ARGON2_THREAD_NICE > 0
  })
  const keysJson = env.JWT_KEYS ?? null
  if (keysJson !== null && env.JWT_SECRET !== undefined) {
    problems.push('set either JWT_SECRET (HS256, single service) or JWT_KEYS/JWT_KEYS_FILE (ES256/EdDSA), not both: one deployment never mixes symmetric and asymmetric keys')
  }
  let keySet: SigningKeySet | null = null
  if (keysJson !== null) {
    keySet = attempt(() => parseKeySet(keysJson, env.JWT_SIGNING_KID), null)
  } else if (env.JWT_SIGNING_KID !== undefined) {
    problems.push('JWT_SIGNING_KID needs JWT_KEYS or JWT_KEYS_FILE')
  }
  if (production && keysJson === null && env.JWT_SECRET === undefined) {
    problems.push('production needs signing keys: JWT_KEYS or JWT_KEYS_FILE (a JWK Set of ES256/EdDSA private keys), or JWT_SECRET for HS256 in a single-service setup')
  }
  // Unset in production is the signing keys' problem, named above.
  const jwtSecret = keysJson === null && env.JWT_SECRET !== undefined ? attempt(() => checkSecret('JWT_SECRET', env.JWT_SECRET, production), null) : null
  // undefined: refused (null is unset, outside production).
  const refreshSecret = attempt(() => checkSecret('REFRESH_TOKEN_SECRET', env.REFRESH_TOKEN_SECRET, production), undefined)
  if (jwtSecret !== null && jwtSecret === refreshSecret) {
    problems.push('JWT_SECRET and REFRESH_TOKEN_SECRET must differ: one key per purpose')
  }
  const acceptedSecrets = refreshSecret === undefined ? [] : attempt(() => parseAcceptedSecrets(env.REFRESH_TOKEN_ACCEPTED_SECRETS, refreshSecret, jwtSecret, production), [])
  const issuer = attempt(() => checkClaimValue('JWT_ISSUER', env.JWT_ISSUER), env.JWT_ISSUER)
  const audience = attempt(() => checkClaimValue('JWT_AUDIENCE', env.JWT_AUDIENCE), env.JWT_AUDIENCE)
  const redisUrl = attempt(() => parseRedisUrl(env.REDIS_URL), null)
  const sentinel = attempt(() => parseSentinels(env), null)
  const cluster = attempt(() => parseCluster(env, redisUrl), null)
  if (production && env.REDIS_URL === undefined) {
    problems.push('REDIS_URL is required in production: the embedded store serves one process only and loses every session on restart')
  }
  if (production && !env.COOKIE_SECURE) {
    problems.push('COOKIE_SECURE=false is not allowed in production: the refresh cookie must never travel over plain HTTP')
  }
  const weakHashes = production ? argon2BelowOwasp(env.ARGON2_MEMORY_COST, env.ARGON2_TIME_COST) : null
  if (weakHashes !== null) problems.push(weakHashes)
  const cookieName = env.COOKIE_NAME ?? (env.COOKIE_SECURE ? '__Secure-refresh_token' : 'refresh_token')
  // Browsers match cookie-name prefixes case-insensitively.
  if (/^__host-/i.test(cookieName)) {
    problems.push('COOKIE_NAME with a __Host- prefix is refused: browsers keep such a cookie only with Path=/, and the refresh cookie is scoped to the auth routes (use __Secure-)')
  }
  if (!env.COOKIE_SECURE && /^__secure-/i.test(cookieName)) {
    problems.push('COOKIE_NAME with a __Secure- prefix requires COOKIE_SECURE=true (browsers drop such cookies otherwise)')
  }
  // Browsers resolve `.` and `..` out of the URLs they request, so a cookie path holding one is never sent back.
  if (/(^|\/)\.{1,2}(\/|$)/.test(env.PUBLIC_PATH_PREFIX)) {
    problems.push('PUBLIC_PATH_PREFIX must not hold a "." or ".." segment: browsers remove them from the URLs they request')
  }
  if (env.COOKIE_SAMESITE === 'none' && !env.COOKIE_SECURE) {
    problems.push('COOKIE_SAMESITE=none requires COOKIE_SECURE=true (browsers refuse SameSite=None without Secure)')
  }
  if (env.REFRESH_REUSE_GRACE >= env.REFRESH_IDLE_TTL) {
    problems.push('REFRESH_REUSE_GRACE must be shorter than REFRESH_IDLE_TTL')
  }
  attempt(() => { checkHost(env.HOST) }, undefined)
  if (env.METRICS_PORT !== undefined && env.METRICS_PORT === env.PORT) {
    problems.push('METRICS_PORT must differ from PORT (unset it to serve /metrics on PORT)')
  }
  const trustProxy = attempt(() => parseTrustProxy(env.TRUST_PROXY), false)
  const allowedOrigins = attempt(() => parseOrigins(env.ALLOWED_ORIGINS, production), [])
  const rateLimitExempt = attempt(() => parseRateLimitExempt(env.RATE_LIMIT_EXEMPT), [])
  const rate = (name: keyof Env & `RATE_LIMIT_${string}`): RateLimit => attempt(() => parseRate(name, env[name]), { max: 1, windowSeconds: 1 })
  const rateLimits = {
    loginIp: rate('RATE_LIMIT_LOGIN_IP'),
    loginAccountIp: rate('RATE_LIMIT_LOGIN_ACCOUNT_IP'),
    loginAccount: rate('RATE_LIMIT_LOGIN_ACCOUNT'),
    registerIp: rate('RATE_LIMIT_REGISTER_IP'),
    passwordIp: rate('RATE_LIMIT_PASSWORD_IP'),
    refreshIp: rate('RATE_LIMIT_REFRESH_IP'),
    refreshSession: rate('RATE_LIMIT_REFRESH_SESSION'),
    notFoundIp: rate('RATE_LIMIT_NOT_FOUND_IP')
  }
  if (problems.length > 0) {
    // A problem of the second round that names a refused variable is about its default, not about what was set.
    const names = [...refused].map((name) => new RegExp(`\\b${name}\\b`))
    throw new ConfigError([...problems.slice(0, firstRound), ...problems.slice(firstRound).filter((problem) => !names.some((name) => name.test(problem)))], misspelt)
  }

  const keyMode = keySet !== null ? 'keys' : env.JWT_SECRET !== undefined ? 'hs256' : 'generate'
  const set = (name: keyof Env): boolean => data[name] !== undefined
  const warnings = [...misspelt, ...marked]
  if (set('JWT_ALGORITHM') && keyMode !== 'generate') {
    const signer = keySet !== null ? `JWT_KEYS signs with its key ${keySet.current.kid} (${keySet.current.alg})` : 'JWT_SECRET signs with HS256'
    warnings.push(`JWT_ALGORITHM is set but not read: it is the algorithm of a key generated when none is configured, and ${signer}`)
  }
  const generates = keyMode === 'generate' || refreshSecret === null
  if (set('DEV_SECRETS_FILE') && (production || env.REDIS_URL === undefined || !generates)) {
    const why = production
      ? 'production never generates key material'
      : env.REDIS_URL === undefined ? 'without REDIS_URL each process generates its own key material, kept in memory' : 'every signing key and secret is configured, so none is generated'
    warnings.push(`DEV_SECRETS_FILE is set but not read: ${why}`)
  }
  // One secret per line is how a list is often written to a file, but a secret may hold a line break (`openssl rand
  // -base64 64` wraps), so this list cannot be told from one secret: said, not refused. Misread, the sessions begun
  // under each of those secrets would be refused, and their users signed out, at the rotation.
  acceptedSecrets.forEach((secret, i) => {
    const lines = secret.split(/\r?\n/).length
    if (lines > 1) {
      warnings.push(`REFRESH_TOKEN_ACCEPTED_SECRETS (secret ${i + 1} of ${acceptedSecrets.length}) spans ${lines} lines and is taken as one secret, line breaks included: separate several secrets with commas`)
    }
  })
  // `echo secret | base64` for a Kubernetes Secret puts a line break at the end of the value, and it is part of the
  // secret (every instance must read the same bytes, and did). Said, because the list it moves to when it is
  // rotated out trims its entries: listed there, it would open none of the sessions begun under it.
  if (typeof refreshSecret === 'string' && refreshSecret.trim() !== refreshSecret) {
    warnings.push('REFRESH_TOKEN_SECRET begins or ends with whitespace (a line break, as `echo secret | base64` encodes one), which is part of the secret; REFRESH_TOKEN_ACCEPTED_SECRETS trims each of its entries, so when this secret is rotated out there, the sessions begun under it end: give its successor without')
  }
  // A PEM is what an asymmetric key comes as: meant for JWT_KEYS, it signs here as an HMAC secret, which every
  // verifier must then hold.
  if (typeof jwtSecret === 'string' && isPem(jwtSecret)) {
    warnings.push('JWT_SECRET holds a PEM key, taken as an HS256 secret that every verifier must hold; for ES256 or EdDSA, give the key as a JWK Set in JWT_KEYS (README: Signing keys and rotation)')
  }
  // A token carries one audience: a list written here is one audience that no resource server names.
  if (audience.includes(',')) {
    warnings.push(`JWT_AUDIENCE ${JSON.stringify(audience)} holds a comma, and is one audience, as every token carries it: a resource server that expects one of its parts refuses them`)
  }
  if (threads === 1) {
    const given = String(process.env.UV_THREADPOOL_SIZE)
    const read = Number.parseInt(given, 10) === 1 ? '' : ' (libuv reads a value that does not begin with a number, an empty one too, as 0, and runs 0 as 1)'
    warnings.push(`UV_THREADPOOL_SIZE=${JSON.stringify(given)} leaves libuv's threadpool one thread${read}: each password hash holds it, and file reads and DNS look-ups (of Redis hosts) wait; unset it for 4 threads, or give the number wanted`)
  }
  if (env.REFRESH_IDLE_TTL > env.REFRESH_ABSOLUTE_TTL) {
    warnings.push(`REFRESH_IDLE_TTL (${env.REFRESH_IDLE_TTL} s) is longer than REFRESH_ABSOLUTE_TTL (${env.REFRESH_ABSOLUTE_TTL} s), which ends every session first: idleness never ends one`)
  }
  // A client refreshes when its access token runs out (or shortly before): its session must outlast that idle time.
  if (env.REFRESH_IDLE_TTL <= env.ACCESS_TOKEN_TTL) {
    warnings.push(`REFRESH_IDLE_TTL (${env.REFRESH_IDLE_TTL} s) is not longer than ACCESS_TOKEN_TTL (${env.ACCESS_TOKEN_TTL} s): a client that refreshes as its access token runs out finds its session ended for idleness, and its user signs in again every ${env.ACCESS_TOKEN_TTL} s`)
  }
  if (env.REDIS_URL === undefined) {
    const unread = (['REDIS_KEY_PREFIX', 'REDIS_COMMAND_TIMEOUT_MS', 'REDIS_SENTINEL_MASTER'] as const).filter(set)
    if (unread.length > 0) warnings.push(`${unread.join(', ')} ${unread.length === 1 ? 'is' : 'are'} set but not read: without REDIS_URL the embedded store is used`)
  } else if (set('REDIS_SENTINEL_MASTER') && sentinel === null) {
    warnings.push('REDIS_SENTINEL_MASTER is set but not read: it names the master of REDIS_SENTINELS, which is not set')
  }

  return {
    env: env.NODE_ENV,
    isProduction: production,
    port: env.PORT,
    host: env.HOST,
    metricsPort: env.METRICS_PORT ?? null,
    logLevel: env.LOG_LEVEL,
    accessLog: env.ACCESS_LOG,
    redis: env.REDIS_URL === undefined
      ? null
      : { url: env.REDIS_URL, keyPrefix: env.REDIS_KEY_PREFIX, commandTimeoutMs: env.REDIS_COMMAND_TIMEOUT_MS, sentinel, cluster },
    jwt: {
      secret: jwtSecret,
      keyMode,
      keySet,
      generateAlgorithm: env.JWT_ALGORITHM,
      clockToleranceSeconds: env.JWT_CLOCK_TOLERANCE,
      verifiedTokenCacheSize: env.ACCESS_TOKEN_CACHE_SIZE,
      issuer,
      audience,
      accessTokenTtlSeconds: env.ACCESS_TOKEN_TTL,
      revocation: env.ACCESS_TOKEN_REVOCATION
    },
    devSecretsFile: env.DEV_SECRETS_FILE,
    refresh: {
      secret: refreshSecret ?? null,
      acceptedSecrets,
      idleTtlSeconds: env.REFRESH_IDLE_TTL,
      absoluteTtlSeconds: env.REFRESH_ABSOLUTE_TTL,
      reuseGraceSeconds: env.REFRESH_REUSE_GRACE,
      maxFamiliesPerUser: env.MAX_SESSIONS_PER_USER
    },
    cookie: { name: cookieName, secure: env.COOKIE_SECURE, sameSite: env.COOKIE_SAMESITE, path: `${env.PUBLIC_PATH_PREFIX}/auth` },
    publicPathPrefix: env.PUBLIC_PATH_PREFIX,
    trustProxy,
    allowedOrigins,
    rateLimitExempt,
    rateLimits,
    argon2: {
      memoryCost: env.ARGON2_MEMORY_COST,
      timeCost: env.ARGON2_TIME_COST,
      parallelism: env.ARGON2_PARALLELISM,
      maxConcurrency,
      maxQueue: env.ARGON2_MAX_QUEUE ?? maxConcurrency * HASHES_QUEUED_PER_SLOT,
      threadNice: env.ARGON2_THREAD_NICE
    },
    shutdownTimeoutSeconds: env.SHUTDOWN_TIMEOUT,
    warnings,
    secrets: [
      jwtSecret, refreshSecret, ...acceptedSecrets,
      // Read again only once the set was taken, so it is a JWK Set whose keys each have a `d`.
      ...(keySet === null ? [] : (JSON.parse(keysJson as string) as { keys: Array<{ d: string }> }).keys.map((key) => key.d)),
      ...(redisUrl === null ? [] : [redisUrl.password, decodeURIComponent(redisUrl.password)]),
      sentinel?.password
    ].filter((secret): secret is string => typeof secret === 'string' && secret !== '')
  }
}

function parseRate (name: string, value: string): RateLimit {
  const [max, windowSeconds] = value.split('/').map(Number) as [number, number]
  if (max < 1 || windowSeconds < 1) throw new ConfigError(`${name} must be "max/windowSeconds" with both at least 1`)
  return { max, windowSeconds }
}

/** A host name to listen on: underscores, as Docker Compose names take them; a trailing dot, as a full name may end. */
const HOST_NAME = /^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_.])?$/

const listenable = (host: string): boolean => isIP(host) !== 0 || HOST_NAME.test(host)

/**
 * HOST as the server listens on it: an address or a host name. Anything else failed only once the configuration was
 * taken, as "getaddrinfo ENOTFOUND", naming no variable; the usual slips are named here.
 */
function checkHost (value: string): void {
  if (listenable(value)) return
  const refused = (slip: string) => new ConfigError(`HOST must be an address or a host name to listen on, ${slip}`)
  if (/^[a-z]+:\/\//i.test(value)) throw refused('not a URL')
  const unbracketed = /^\[(.*)\]$/.exec(value)?.[1]
  if (unbracketed !== undefined && isIP(unbracketed) === 6) throw refused(`an IPv6 address without brackets (${unbracketed})`)
  if (listenable(value.replace(/:[0-9]+$/, ''))) throw refused('without a port: PORT gives it')
  throw refused('such as 0.0.0.0, :: or 127.0.0.1')
}

function parseTrustProxy (value: string): false | number | string[] {
  if (value === 'false') return false
  if (/^[0-9]+$/.test(value)) return Number(value)
  return addressList('TRUST_PROXY', value, {
    usage: 'use false, a hop count, or a list of addresses',
    // Every address, as `true` would be: any client's X-Forwarded-For is believed, so each picks the address its
    // rate limits count, and the one its sessions list.
    everyAddress: 'any client could choose the address it is counted by (list the load balancer\'s addresses, or give its hop count)'
  })
}

function parseRateLimitExempt (value: string): string[] {
  if (value === '') return []
  return addressList('RATE_LIMIT_EXEMPT', value, {
    usage: 'list addresses and ranges, such as 203.0.113.7, 198.51.100.0/24',
    everyAddress: 'no per-address request limit would count anyone (raise those limits instead)'
  })
}

/** A list of IP addresses and CIDR ranges, none of them every address. */
function addressList (name: string, value: string, say: { usage: string, everyAddress: string }): string[] {
  return listOf(name, 'entry', value, (entry) => {
    const [address, bits, extra] = entry.split('/')
    const version = isIP(address ?? '')
    const maxBits = version === 4 ? 32 : 128
    if (version === 0 || extra !== undefined || (bits !== undefined && !(/^[0-9]{1,3}$/.test(bits) && Number(bits) <= maxBits))) {
      throw new ConfigError(`${name}: "${entry}" is not an IP address or CIDR range (${say.usage})`)
    }
    if (bits !== undefined && Number(bits) === 0) throw new ConfigError(`${name}: "${entry}" is every address: ${say.everyAddress}`)
    return entry
  })
}

function parseOrigins (value: string, production: boolean): string[] {
  if (value === '') return []
  return listOf('ALLOWED_ORIGINS', 'origin', value, (origin) => {
    let parsed: URL | null = null
    try { parsed = new URL(origin) } catch {}
    // An origin is scheme://host[:port] exactly, as browsers send it in the Origin header.
    if (parsed === null || parsed.origin !== origin || !/^https?:$/.test(parsed.protocol)) {
      // The usual slip: a URL copied from the address bar, trailing slash and all. Else a host in capitals or the
      // scheme's own port, which browsers never write in an Origin header.
      const path = parsed !== null && /^[/?#]/.test(origin.slice(parsed.origin.length))
      const meant = parsed === null || !/^https?:$/.test(parsed.protocol)
        ? ''
        : ` (its origin is ${parsed.origin}: ${path ? 'no path, not even "/"' : 'as browsers send it, the host in lower case, without the scheme\'s default port'})`
      throw new ConfigError(`ALLOWED_ORIGINS: "${origin}" is not an origin like https://app.example.com${meant}`)
    }
    // A URL takes * in a host name, and no browser sends one in an Origin header: granted, it matched nothing.
    if (parsed.hostname.includes('*')) {
      throw new ConfigError(`ALLOWED_ORIGINS: "${origin}" holds a wildcard, which origins never do: list each origin granted (each one's pages can refresh its sessions and read their access tokens)`)
    }
    if (production && parsed.protocol === 'http:') {
      // A page served over plain HTTP is whatever anyone on its network path makes it, and a granted origin's pages
      // can refresh the session and read the access token. localhost too: any local process can serve on its port.
      throw new ConfigError(`ALLOWED_ORIGINS: "${origin}" is plain HTTP; production grants sessions to https:// origins only`)
    }
    return origin
  })
}

/**
 * Reads `<NAME>_FILE`; a file's trailing newlines are not part of the value (`echo secret > file`), nor is a
 * byte-order mark before it (`byteOrderMark`), which some Windows editors write at the start of UTF-8 and Node's
 * decoding keeps: a JWK Set after one was refused as "not valid JSON", and a URL as no redis:// URL.
 */
function readSecretFile (name: string, path: string): { value: string, byteOrderMark: boolean } {
  // Quoted: a path is named as it was given, a space at its end (from YAML) or the \r of an env file written on
  // Windows made visible, where printed bare it read as the right path.
  const named = JSON.stringify(path)
  if (QUOTED.test(path)) throw new ConfigError(writtenInQuotes(name))
  let bytes: Buffer
  try {
    bytes = readFileSync(path)
  } catch (err) {
    throw new ConfigError(`${name}: cannot read ${named} (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
  }
  // Decoded as it is, a byte that is not UTF-8 would be U+FFFD: a binary key, each such byte's bits lost, all alike.
  if (!isUtf8(bytes)) {
    throw new ConfigError(`${name}: ${named} is not UTF-8 text (a binary key?); it holds text: for a secret, generate one with: openssl rand -base64 48`)
  }
  const text = bytes.toString('utf8')
  const byteOrderMark = text.startsWith('\uFEFF')
  const value = text.slice(byteOrderMark ? 1 : 0).replace(/(\r?\n)+$/, '')
  if (value === '') throw new ConfigError(`${name}: ${named} is empty`)
  return { value, byteOrderMark }
}
