import t from 'tap'
import { underSustainedTraffic } from '../helpers/sustained-traffic.js'

t.test('Redis store: under sustained traffic the service keeps nothing of the requests it has answered once its bounded tables are full, and lets every connection go', (t) => underSustainedTraffic(t, 'redis'))
