import neostandard from 'neostandard'

export default neostandard({
  ts: true,
  ignores: ['dist/**', '.bench-build-*/**', 'coverage/**', '.tap/**', 'bench/results/**']
})
