import t from 'tap'
import { buildApp } from '../helpers/app.js'

for (const store of ['redis', 'memory'] as const) {
  t.test(`health (${store} store)`, async (t) => {
    const app = await buildApp(t, { store })
    const live = await app.inject({ url: '/health/live' })
    t.equal(live.statusCode, 200)
    t.same(live.json(), { status: 'ok' })
    const ready = await app.inject({ url: '/health/ready' })
    t.equal(ready.statusCode, 200, 'ready: the store answers')
    t.same(ready.json(), { status: 'ok' })
  })
}
