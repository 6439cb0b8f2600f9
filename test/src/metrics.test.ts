import { Counter, Histogram, Registry } from 'prom-client'
import t from 'tap'
import { DURATION_BUCKETS, ServiceMetrics } from '../../src/metrics.js'

/** prom-client's own Counter and Histogram, labelled as the service's, fed the same observations. */
function reference (): { registry: Registry, record: (method: string, route: string, status: number, ms: number) => void } {
  const registry = new Registry()
  const requests = new Counter({ name: 'http_requests_total', help: 'Requests answered, by route and status code.', labelNames: ['method', 'route', 'status_code'], registers: [registry] })
  const duration = new Histogram({ name: 'http_request_duration_seconds', help: 'Time from the request to its answer, by route.', labelNames: ['method', 'route'], buckets: DURATION_BUCKETS, registers: [registry] })
  return {
    registry,
    record (method, route, status, ms) {
      requests.labels(method, route, String(status)).inc()
      duration.labels(method, route).observe(ms / 1000)
    }
  }
}

t.test('per-route request metrics expose exactly what prom-client\'s Counter and Histogram would', async (t) => {
  const metrics = new ServiceMetrics()
  const expected = reference()
  const me = metrics.route('GET', '/me')
  const refresh = metrics.route('POST', '/auth/refresh')
  metrics.route('GET', '/never-requested')
  // Below, on and above bucket bounds, and beyond the last one; statuses seen for the first time in between.
  const observations: Array<[string, string, number, number]> = [
    ['GET', '/me', 200, 0.3], ['POST', '/auth/refresh', 200, 4.2], ['GET', '/me', 401, 0.5], ['GET', '/me', 200, 1],
    ['POST', '/auth/refresh', 409, 2500], ['POST', '/auth/refresh', 200, 9000], ['GET', '/me', 200, 0], ['GET', '/me', 200, 0.7654321],
    ['POST', '/auth/refresh', 503, 25.000001], ['GET', '/me', 401, 100]
  ]
  for (const [method, route, status, ms] of observations) {
    (route === '/me' ? me : refresh).record(status, ms)
    expected.record(method, route, status, ms)
  }

  for (const name of ['http_requests_total', 'http_request_duration_seconds']) {
    t.equal(await metrics.registry.getSingleMetricAsString(name), await expected.registry.getSingleMetricAsString(name), name)
  }
  const exposition = (await metrics.exposition()).body
  t.match(exposition, /^http_request_duration_seconds_bucket\{le="0\.001",method="GET",route="\/me"\} 5$/m, 'buckets are cumulative')
  t.match(exposition, /^http_request_duration_seconds_count\{method="POST",route="\/auth\/refresh"\} 4$/m)
  t.notMatch(exposition, /never-requested/, 'a route without requests has no series yet')
})

t.test('refresh and login outcomes (those from known browsers again) expose exactly what prom-client\'s labelled Counter would', async (t) => {
  const metrics = new ServiceMetrics()
  const registry = new Registry()
  const refreshes = new Counter({ name: 'auth_refresh_total', help: 'Refresh-token presentations by outcome; "reused" means a rotated token came back and its family was revoked, "superseded" that it came in a request made before its session\'s latest rotation (409, the family kept), "unavailable" that the store did not answer (503, the successor set).', labelNames: ['outcome'], registers: [registry] })
  const logins = new Counter({ name: 'auth_login_total', help: 'Login attempts by outcome.', labelNames: ['outcome'], registers: [registry] })
  for (const outcome of ['rotated', 'rotated', 'reused', 'grace', 'rotated', 'invalid', 'superseded', 'limited', 'unavailable', 'invalid'] as const) {
    metrics.refresh(outcome)
    refreshes.inc({ outcome })
  }
  const fromKnownBrowsers = new Counter({ name: 'auth_login_known_browser_total', help: 'Login attempts, by outcome, from a browser in which the account has signed in before (its device cookie), which the account\'s own limit does not hold: while guessing spread over many addresses has the account limited, its owners\' sign-ins.', labelNames: ['outcome'], registers: [registry] })
  for (const [outcome, fromKnownBrowser] of [['invalid_credentials', false], ['success', true], ['limited', false], ['success', false], ['invalid_credentials', true]] as const) {
    metrics.login(outcome, fromKnownBrowser)
    logins.inc({ outcome })
    if (fromKnownBrowser) fromKnownBrowsers.inc({ outcome })
  }
  for (const name of ['auth_refresh_total', 'auth_login_total', 'auth_login_known_browser_total']) {
    t.equal(await metrics.registry.getSingleMetricAsString(name), await registry.getSingleMetricAsString(name), name)
  }
  t.match((await metrics.exposition()).body, /^auth_refresh_total\{outcome="rotated"\} 3$/m)
})
