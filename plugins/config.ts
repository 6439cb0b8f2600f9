import fp from 'fastify-plugin'
import { loadConfig, type Config } from '../src/config.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}

export interface ConfigPluginOptions {
  /** Already validated by the caller (src/server.ts, tests); read from process.env otherwise. */
  config?: Config
}

/**
 * The validated configuration, decorated once; nothing else reads process.env. What it sets but does not read (a
 * misspelt variable, one that does not apply) is said once at start, where the operator looks when a setting seems
 * to have no effect.
 */
export default fp<ConfigPluginOptions>(async function configPlugin (fastify, opts) {
  const config = opts.config ?? loadConfig()
  for (const warning of config.warnings) fastify.log.warn(warning)
  fastify.decorate('config', config)
}, { name: 'config', fastify: '5.x' })
