import { collectDefaultMetrics, Registry, type Metric } from 'prom-client'

/** Label values of auth_refresh_total; not SessionService's RefreshOutcome, which a route turns into one of these. */
export type RefreshOutcomeLabel = 'rotated' | 'grace' | 'reused' | 'superseded' | 'invalid' | 'limited' | 'unavailable'
export type LoginOutcomeLabel = 'success' | 'invalid_credentials' | 'limited'

/** Seconds; from a cache hit on /me (well under a millisecond) to a login on a busy machine. */
export const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

let processRegistry: Registry | undefined

/**
 * Process metrics (CPU, memory, event-loop delay, GC) belong to the process, not to one app: they are
 * collected once however many apps a process builds (the tests build hundreds), since prom-client
 * starts an event-loop monitor and a GC observer per collection and never stops them. Started with the first app,
 * not at the first scrape: what they count begins when they start, and an event-loop monitor with no sample yet
 * reports a minimum of 9.2e9 s and a mean of NaN, in every instance's first scrape.
 */
function processMetrics (): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry()
    collectDefaultMetrics({ register: processRegistry })
  }
  return processRegistry
}

/** What the password hasher tells of its load. */
export interface HashingLoad {
  readonly running: number
  readonly pending: number
  readonly refused: number
  readonly dropped: number
}

/** What one route records per answered request; bound once per route so a request does no look-up by name. */
export interface RouteRecorder {
  record (statusCode: number, durationMs: number): void
}

/** A series of a metric as prom-client's registry formats it: its samples are computed at scrape time. */
interface Sample {
  value: number
  labels: Record<string, string | number>
  metricName?: string
}

/** What prom-client's Registry needs of a metric: a name, its help and type, and its samples. */
interface CollectedMetric {
  name: string
  help: string
  type: 'counter' | 'gauge' | 'histogram'
  aggregator: 'sum'
  get: () => { name: string, help: string, type: string, aggregator: 'sum', values: Sample[] }
}

interface RouteSeries {
  method: string
  route: string
  /** Observations per bucket of DURATION_BUCKETS, not cumulative; the last slot counts those above them all. */
  buckets: Float64Array
  sum: number
  count: number
}

/**
 * Requests and their latency per route, counted in plain numbers on every request and turned into
 * Prometheus samples only when /metrics is scraped. prom-client's labelled Counter.inc and
 * Histogram.observe check and hash their label values on every call: 0.9 µs per request together in a
 * microbenchmark here, 3–5 % of a cached /me. The exposition is the one prom-client's own Counter
 * and Histogram give for the same observations (test/src/metrics.test.ts holds that).
 */
class RequestMetrics {
  /** Series in the order of their first observation, as prom-client lists them. */
  readonly #statusSeries: Array<{ labels: { method: string, route: string, status_code: string }, count: number }> = []
  readonly #routeSeries: RouteSeries[] = []

  route (method: string, route: string): RouteRecorder {
    const byStatus = new Map<number, { count: number }>()
    const series: RouteSeries = { method, route, buckets: new Float64Array(DURATION_BUCKETS.length + 1), sum: 0, count: 0 }
    return {
      record: (statusCode, durationMs) => {
        let status = byStatus.get(statusCode)
        if (status === undefined) {
          const created = { labels: { method, route, status_code: String(statusCode) }, count: 0 }
          this.#statusSeries.push(created)
          byStatus.set(statusCode, created)
          status = created
        }
        status.count += 1

        const seconds = durationMs / 1000
        let bucket = 0
        while (bucket < DURATION_BUCKETS.length && seconds > (DURATION_BUCKETS[bucket] as number)) bucket += 1
        series.buckets[bucket] = (series.buckets[bucket] as number) + 1
        series.sum += seconds
        if (series.count === 0) this.#routeSeries.push(series)
        series.count += 1
      }
    }
  }

  readonly requests: CollectedMetric = collected('http_requests_total', 'Requests answered, by route and status code.', 'counter',
    () => this.#statusSeries.map(({ labels, count }) => ({ value: count, labels })))

  readonly duration: CollectedMetric = collected('http_request_duration_seconds', 'Time from the request to its answer, by route.', 'histogram',
    () => this.#routeSeries.flatMap(({ method, route, buckets, sum, count }) => {
      let cumulative = 0
      const samples: Sample[] = DURATION_BUCKETS.map((le, i) => {
        cumulative += buckets[i] as number
        return { value: cumulative, labels: { le, method, route }, metricName: 'http_request_duration_seconds_bucket' }
      })
      samples.push(
        { value: count, labels: { le: '+Inf', method, route }, metricName: 'http_request_duration_seconds_bucket' },
        { value: sum, labels: { method, route }, metricName: 'http_request_duration_seconds_sum' },
        { value: count, labels: { method, route }, metricName: 'http_request_duration_seconds_count' }
      )
      return samples
    }))
}

function collected (name: string, help: string, type: CollectedMetric['type'], values: () => Sample[]): CollectedMetric {
  return { name, help, type, aggregator: 'sum', get: () => ({ name, help, type, aggregator: 'sum', values: values() }) }
}

/** A counter by outcome, counted as RequestMetrics counts requests: one per refresh or login. */
class OutcomeCounter<Outcome extends string> {
  /** In the order of their first occurrence, as prom-client lists them. */
  readonly #series = new Map<Outcome, { labels: { outcome: Outcome }, value: number }>()
  readonly metric: CollectedMetric

  constructor (name: string, help: string) {
    this.metric = collected(name, help, 'counter', () => [...this.#series.values()].map(({ labels, value }) => ({ labels, value })))
  }

  inc (outcome: Outcome): void {
    const series = this.#series.get(outcome)
    if (series === undefined) this.#series.set(outcome, { labels: { outcome }, value: 1 })
    else series.value += 1
  }
}

/**
 * The service's Prometheus metrics, all counted in plain numbers: a request costs two increments and a
 * bucket search, a refresh or login one more increment. The request volume and latency that an
 * access-log line per success used to carry are here instead (src/app.ts: ACCESS_LOG).
 */
export class ServiceMetrics {
  readonly registry = new Registry()
  readonly #requests = new RequestMetrics()

  readonly #refreshes = new OutcomeCounter<RefreshOutcomeLabel>('auth_refresh_total',
    'Refresh-token presentations by outcome; "reused" means a rotated token came back and its family was revoked, "superseded" that it came in a request made before its session\'s latest rotation (409, the family kept), "unavailable" that the store did not answer (503, the successor set).')

  readonly #logins = new OutcomeCounter<LoginOutcomeLabel>('auth_login_total', 'Login attempts by outcome.')
  readonly #loginsFromKnownBrowsers = new OutcomeCounter<LoginOutcomeLabel>('auth_login_known_browser_total',
    'Login attempts, by outcome, from a browser in which the account has signed in before (its device cookie), which the account\'s own limit does not hold: while guessing spread over many addresses has the account limited, its owners\' sign-ins.')

  #underAcceptedSecret = 0
  readonly #underAcceptedSecretMetric = collected('auth_refresh_accepted_secret_total',
    'Refreshes answered for sessions begun under a secret of REFRESH_TOKEN_ACCEPTED_SECRETS rather than REFRESH_TOKEN_SECRET: sessions a retirement of that secret would end.',
    'counter', () => [{ value: this.#underAcceptedSecret, labels: {} }])

  constructor () {
    processMetrics()
    // prom-client's Registry formats any metric that gives a name, help, type and samples (its `get`).
    for (const metric of [this.#requests.requests, this.#requests.duration, this.#refreshes.metric, this.#logins.metric, this.#loginsFromKnownBrowsers.metric, this.#underAcceptedSecretMetric]) {
      this.registry.registerMetric(metric as unknown as Metric)
    }
  }

  /**
   * The requests no route answered: unknown paths, URLs the router cannot decode, what Node's server answers on its
   * own. Under one label whatever they asked for, so that a scanner's guesses never become label values.
   */
  readonly unmatched: RouteRecorder = this.#requests.route('*', '(unmatched)')

  /** A recorder for one route (method and URL pattern, never the raw URL: bounded label values). */
  route (method: string, route: string): RouteRecorder {
    return this.#requests.route(method, route)
  }

  refresh (outcome: RefreshOutcomeLabel): void {
    this.#refreshes.inc(outcome)
  }

  /** A refresh answered for a session begun under an accepted secret (README: rotating the refresh-token secret). */
  refreshUnderAcceptedSecret (): void {
    this.#underAcceptedSecret += 1
  }

  /** A login's outcome; from a known browser (plugins/device-cookie.ts), counted again as one. */
  login (outcome: LoginOutcomeLabel, fromKnownBrowser: boolean): void {
    this.#logins.inc(outcome)
    if (fromKnownBrowser) this.#loginsFromKnownBrowsers.inc(outcome)
  }

  /**
   * The password hasher's load, read at scrape time: hashes computing and waiting for a slot, and those refused with
   * the queue full or dropped with their client gone (src/password-hasher.ts). Shedding shows here, not in the log.
   */
  observeHashing (hasher: HashingLoad): void {
    const metrics = [
      collected('auth_password_hashes', 'Password hashes (argon2id) by state: computing in a slot, or waiting for one.', 'gauge',
        () => [{ value: hasher.running, labels: { state: 'running' } }, { value: hasher.pending, labels: { state: 'waiting' } }]),
      collected('auth_password_hashes_shed_total', 'Password hashes not computed: refused with the queue full (503 SERVICE_BUSY), or dropped when their client had gone.', 'counter',
        () => [{ value: hasher.refused, labels: { reason: 'queue_full' } }, { value: hasher.dropped, labels: { reason: 'client_gone' } }])
    ]
    for (const metric of metrics) this.registry.registerMetric(metric as unknown as Metric)
  }

  /**
   * Follow-ups of store writes answered 503 that may still have run (src/unanswered-writes.ts), read at scrape time:
   * waiting for their late writes to settle, or for a store that cannot take them yet.
   */
  observeUnansweredWrites (writes: { readonly pendingFollowUps: number }): void {
    this.registry.registerMetric(collected('auth_unanswered_writes_pending',
      'Follow-ups of store writes answered 503 that may still have run: sessions of unanswered logins to end, access tokens of what such a write ended to revoke.',
      'gauge', () => [{ value: writes.pendingFollowUps, labels: {} }]) as unknown as Metric)
  }

  /**
   * This instance's wall clock against the store's (src/redis-clock.ts), read at scrape time. Sessions do not depend
   * on it; access tokens do, being signed and checked on each instance's own clock (JWT_CLOCK_TOLERANCE).
   */
  observeClockSkew (clock: { readonly skewMs: number | null }): void {
    this.registry.registerMetric(collected('auth_store_clock_skew_seconds',
      'This instance\'s wall clock minus the Redis server\'s, by its latest reading: access tokens are signed and checked on the wall clock, which JWT_CLOCK_TOLERANCE allows to differ between instances.',
      'gauge', () => clock.skewMs === null ? [] : [{ value: clock.skewMs / 1000, labels: {} }]) as unknown as Metric)
  }

  /** The Prometheus text exposition of this app's and the process's metrics. */
  async exposition (): Promise<{ contentType: string, body: string }> {
    const merged = Registry.merge([processMetrics(), this.registry])
    return { contentType: merged.contentType, body: await merged.metrics() }
  }
}
