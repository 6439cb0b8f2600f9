import t from 'tap'
import { underSustainedTraffic } from '../helpers/sustained-traffic.js'

// Its work is a fixed number of rounds: about 60 s here, but 116 s with a busy loop beside it, close to the suite's
// 120 s per file. Twice that, so that a slower machine finishes it.
t.setTimeout(240_000)

t.test('Redis store: under sustained traffic the service keeps nothing of the requests it has answered once its bounded tables are full, and lets every connection go', (t) => underSustainedTraffic(t, 'redis'))
