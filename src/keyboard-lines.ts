/** One row of keys: the characters it types, left to right, and where its first key's left edge is, in key widths. */
type Row = readonly [keys: string, leftEdge: number]

/**
 * Keyboards as their keys lie, each row from the digits down, unshifted and shifted (a password is compared in lower
 * case, so a walk typed with Shift held reads "!qaz" on a US keyboard, "1aqw" on a French one). The rows' left edges
 * follow from the keys before them: Tab 1.5 wide, Caps Lock 1.75, the left Shift 2.25 on ANSI (US) and 1.25 on ISO
 * (German, French), which puts one more key, "<", at the bottom row's start. The French digit row's first key types
 * nothing shifted.
 */
const LAYOUTS: ReadonlyArray<readonly Row[]> = [
  [['`1234567890-=', 0], ['qwertyuiop[]\\', 1.5], ['asdfghjkl;\'', 1.75], ['zxcvbnm,./', 2.25]],
  [['~!@#$%^&*()_+', 0], ['qwertyuiop{}|', 1.5], ['asdfghjkl:"', 1.75], ['zxcvbnm<>?', 2.25]],
  [['^1234567890ß´', 0], ['qwertzuiopü+', 1.5], ['asdfghjklöä#', 1.75], ['<yxcvbnm,.-', 1.25]],
  [['°!"§$%&/()=?`', 0], ['qwertzuiopü*', 1.5], ['asdfghjklöä\'', 1.75], ['>yxcvbnm;:_', 1.25]],
  [['²&é"\'(-è_çà)=', 0], ['azertyuiop^$', 1.5], ['qsdfghjklmù*', 1.75], ['<wxcvbn,;:!', 1.25]],
  [['1234567890°+', 1], ['azertyuiop¨£', 1.5], ['qsdfghjklm%µ', 1.75], ['>wxcvbn?./§', 1.25]]
]

/** The number pad's columns; its rows ("789") are sequences of the digits already. */
const NUMBER_PAD = ['741', '852', '963']

/** A step from a key to a neighbour in the row below (+1) or above (-1), always to the right. */
type Step = 1 | -1

/**
 * Each way a walk goes from key to neighbouring key: along a column (down and to the right: "1qaz"), along a diagonal
 * (up and to the right: "zse4"), and zigzagging between two rows, down then up ("1q2w3e", "qawsed") or up then down
 * ("azsxdc" read from its end, "plokij").
 */
const WALKS: ReadonlyArray<readonly Step[]> = [[1], [-1], [1, -1], [-1, 1]]

/**
 * The lines of keys a walk follows as "abcdef" follows the alphabet, on US, German and French keyboards: each row, and
 * each path a walk takes from every key (WALKS), three keys long at least; none a part of another.
 */
export const KEY_LINES: readonly string[] = distinct([
  ...LAYOUTS.flatMap((rows) => [...rows.map(([keys]) => keys), ...paths(rows)]),
  ...NUMBER_PAD
])

function paths (rows: readonly Row[]): string[] {
  const found: string[] = []
  rows.forEach(([keys], row) => {
    for (let key = 0; key < keys.length; key++) {
      for (const walk of WALKS) {
        let path = ''
        let at: Key | undefined = [row, key]
        while (at !== undefined) {
          path += (rows[at[0]] as Row)[0][at[1]] as string
          at = neighbour(rows, at, walk[(path.length - 1) % walk.length] as Step)
        }
        if (path.length >= 3) found.push(path)
      }
    }
  })
  return found
}

/** A key: its row, and where it is in the row. Every key on these layouts is one UTF-16 unit. */
type Key = readonly [row: number, at: number]

/**
 * The key in the row `step` away under the point half a key right of this key's centre: the neighbour down and to the
 * right (1 to q, q to a) or up and to the right (z to s, s to e).
 */
function neighbour (rows: readonly Row[], [row, at]: Key, step: Step): Key | undefined {
  const to = rows[row + step]
  if (to === undefined) return undefined
  const next = Math.floor((rows[row] as Row)[1] + at + 1 - to[1])
  return next >= 0 && next < to[0].length ? [row + step, next] : undefined
}

/**
 * The lines, less any that is a part of another: a walk along it is a walk along the other. Rows and walks all go
 * rightwards, so no line holds another backwards.
 */
function distinct (lines: readonly string[]): string[] {
  // Longest first: a line that is a part of another is then a part of one already kept, which one search of the kept
  // lines, joined, finds. Comparing each line with every other made the lines take 50 ms of each start here.
  const kept: string[] = []
  let joined = ''
  for (const line of [...lines].sort((a, b) => b.length - a.length)) {
    if (joined.includes(line)) continue
    kept.push(line)
    joined += `${line}\n`
  }
  return kept
}
