import type { FastifyInstance, onRequestHookHandler } from 'fastify'

/** A route option's hooks as a list, whether the route declared none, one or several. */
export function hookList<Hook> (hooks: Hook | Hook[] | undefined): Hook[] {
  return hooks === undefined ? [] : Array.isArray(hooks) ? hooks : [hooks]
}

/**
 * Whether every request of a route leaves a line at info (src/app.ts AccessLogController): with ACCESS_LOG=all
 * every route's, otherwise those of every route not marked `accessLog: 'failures'`.
 */
export function everyRequestLogged (route: { config?: { accessLog?: 'failures' } }, accessLog: 'notable' | 'all'): boolean {
  return accessLog === 'all' || route.config?.accessLog !== 'failures'
}

/**
 * Runs `hook` first, before the route's own, on every route added from now on whose requests all leave a line at
 * info: what goes with a logged request (plugins/access-log.ts, plugins/request-id.ts) costs the others nothing.
 */
export function firstOnLoggedRoutes (fastify: FastifyInstance, hook: onRequestHookHandler): void {
  fastify.addHook('onRoute', (route) => {
    if (!everyRequestLogged(route, fastify.config.accessLog)) return
    route.onRequest = [hook, ...hookList(route.onRequest) as onRequestHookHandler[]]
  })
}
