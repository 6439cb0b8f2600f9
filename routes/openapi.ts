import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'

const openapi: FastifyPluginAsyncTypebox = async (fastify) => {
  // The contract of every other route, generated from their schemas (plugins/openapi.ts); not a route of it itself.
  fastify.get('/openapi.json', {
    schema: { hide: true, response: { 200: Type.Object({}, { additionalProperties: true }) } }
  }, async () => fastify.swagger())
}

export default openapi
