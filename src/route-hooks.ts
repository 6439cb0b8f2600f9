/** A route option's hooks as a list, whether the route declared none, one or several. */
export function hookList<Hook> (hooks: Hook | Hook[] | undefined): Hook[] {
  return hooks === undefined ? [] : Array.isArray(hooks) ? hooks : [hooks]
}
