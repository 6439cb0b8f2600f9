import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client'

/** Label values of auth_refresh_total; not SessionService's RefreshOutcome, which a route turns into one of these. */
export type RefreshOutcomeLabel = 'rotated' | 'grace' | 'reused' | 'invalid' | 'limited'
export type LoginOutcomeLabel = 'success' | 'invalid_credentials' | 'limited'

/** Seconds; from a cache hit on /me (well under a millisecond) to a login on a busy machine. */
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

let processRegistry: Registry | undefined

/**
 * Process metrics (CPU, memory, event-loop delay, GC) belong to the process, not to one app: they are
 * collected once however many apps a process builds (the tests build hundreds), since prom-client
 * starts an event-loop monitor and a GC observer per collection and never stops them.
 */
function processMetrics (): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry()
    collectDefaultMetrics({ register: processRegistry })
  }
  return processRegistry
}

/** What one route records per answered request; bound once per route so a request does no look-up by name. */
export interface RouteRecorder {
  record (statusCode: number, durationMs: number): void
}

/**
 * The service's Prometheus metrics. Per-request cost is a counter and a histogram bucket; the
 * request volume and latency that an access-log line per success used to carry are here instead
 * (src/app.ts: ACCESS_LOG).
 */
export class ServiceMetrics {
  readonly registry = new Registry()
  readonly #requests = new Counter({
    name: 'http_requests_total',
    help: 'Requests answered, by route and status code.',
    labelNames: ['method', 'route', 'status_code'] as const,
    registers: [this.registry]
  })

  readonly #duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from the request to its answer, by route.',
    labelNames: ['method', 'route'] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry]
  })

  readonly #refreshes = new Counter({
    name: 'auth_refresh_total',
    help: 'Refresh-token presentations by outcome; "reused" means a rotated token came back and its family was revoked.',
    labelNames: ['outcome'] as const,
    registers: [this.registry]
  })

  readonly #logins = new Counter({
    name: 'auth_login_total',
    help: 'Login attempts by outcome.',
    labelNames: ['outcome'] as const,
    registers: [this.registry]
  })

  /** A recorder for one route (method and URL pattern, never the raw URL: bounded label values). */
  route (method: string, route: string): RouteRecorder {
    const byStatus = new Map<number, Counter.Internal>()
    const duration = this.#duration.labels(method, route)
    return {
      record: (statusCode, durationMs) => {
        let counter = byStatus.get(statusCode)
        if (counter === undefined) {
          counter = this.#requests.labels(method, route, String(statusCode))
          byStatus.set(statusCode, counter)
        }
        counter.inc()
        duration.observe(durationMs / 1000)
      }
    }
  }

  refresh (outcome: RefreshOutcomeLabel): void {
    this.#refreshes.inc({ outcome })
  }

  login (outcome: LoginOutcomeLabel): void {
    this.#logins.inc({ outcome })
  }

  /** The Prometheus text exposition of this app's and the process's metrics. */
  async exposition (): Promise<{ contentType: string, body: string }> {
    const merged = Registry.merge([processMetrics(), this.registry])
    return { contentType: merged.contentType, body: await merged.metrics() }
  }
}
