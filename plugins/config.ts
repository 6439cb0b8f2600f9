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

/** The validated configuration, decorated once; nothing else reads process.env. */
export default fp<ConfigPluginOptions>(async function configPlugin (fastify, opts) {
  fastify.decorate('config', opts.config ?? loadConfig())
}, { name: 'config', fastify: '5.x' })
