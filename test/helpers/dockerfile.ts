// A Dockerfile read as its stages, for the tests that run what it describes without a container engine.

export interface Stage {
  name: string
  /** The image it starts from, as FROM names it (`node:24-trixie-slim`). */
  image: string
  workdir: string
  /** `chown`: the owner COPY gives the files (`--chown=`), null for root's. */
  copies: Array<{ from: string | null, sources: string[], dest: string, chown: string | null }>
  /** Whom the stage's commands run as from here on (`USER`), null for root. */
  user: string | null
  runs: string[]
  env: Record<string, string>
  cmd: string[] | null
  healthcheck: string[] | null
}

/** The stages of a Dockerfile, in order; continuation lines joined, comments dropped. */
export function parseDockerfile (text: string): Stage[] {
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
  const stages: Stage[] = []
  for (const line of lines) {
    const [, instruction = '', rest = ''] = /^(\S+)\s+(.*)$/.exec(line) ?? []
    const stage = stages.at(-1)
    if (instruction === 'FROM') {
      const [image = '', , name = 'runtime'] = rest.split(/\s+/)
      stages.push({ name, image, workdir: '/', copies: [], runs: [], env: {}, user: null, cmd: null, healthcheck: null })
    } else if (stage === undefined) {
      continue
    } else if (instruction === 'WORKDIR') {
      stage.workdir = rest
    } else if (instruction === 'COPY') {
      const words = rest.split(/\s+/)
      const flag = (name: string): string | null => words.find((w) => w.startsWith(`--${name}=`))?.slice(name.length + 3) ?? null
      const paths = words.filter((w) => !w.startsWith('--'))
      stage.copies.push({ from: flag('from'), sources: paths.slice(0, -1), dest: paths.at(-1) as string, chown: flag('chown') })
    } else if (instruction === 'USER') {
      stage.user = rest
    } else if (instruction === 'RUN') {
      stage.runs.push(rest)
    } else if (instruction === 'ENV') {
      for (const [, key, value] of rest.matchAll(/(\w+)=(\S+)/g)) stage.env[key as string] = value as string
    } else if (instruction === 'CMD') {
      stage.cmd = JSON.parse(rest)
    } else if (instruction === 'HEALTHCHECK') {
      stage.healthcheck = JSON.parse(rest.slice(rest.indexOf('CMD ') + 4))
    }
  }
  return stages
}
