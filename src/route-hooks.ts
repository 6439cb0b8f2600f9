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
