import t from 'tap'
import { KEY_LINES } from '../../src/keyboard-lines.js'

const backwards = (text: string) => [...text].reverse().join('')
const on = (walk: string) => KEY_LINES.some((line) => line.includes(walk) || line.includes(backwards(walk)))

t.test('the lines of keys hold every way a walk goes, on US, German and French keyboards', async (t) => {
  const walks: Array<[string, string]> = [
    ['qwertyuiop', 'a US row'],
    ['~!@#$%^&*()_+', 'the US digit row, shifted'],
    ['<yxcvbnm,.-', 'a German row, with the key ISO adds beside the left Shift'],
    ['²&é"\'(-è_çà)=', 'the French digit row, unshifted'],
    ['°!"§$%&/()=?`', 'the German digit row, shifted'],
    ['1qaz', 'a US column'],
    ['*ik<', 'one shifted: "*IK<" in lower case'],
    ['1qay', 'a German column'],
    ['ßüä', 'one at the row\'s end, three keys long'],
    ['(ik;', 'one shifted'],
    ['&aqw', 'a French column'],
    ['1aqw', 'and shifted, the digits as French keyboards type them'],
    ['zse4', 'a US diagonal'],
    ['.;[=', 'to the end of its rows'],
    ['<aw3', 'a German one from the key beside Shift'],
    ['<qz"', 'and a French one'],
    ['1q2w3e4r5t6y7u8i9o0p-[=]', 'a zigzag between the digits and the row below'],
    ['qawsedrftgyhujikolp', 'between the top and middle rows'],
    ['azsxdcfvgbhnjmk,l.;/', 'and the middle and bottom ones'],
    ['<aysxdcfvgbhnjmk,l.ö-ä', 'the same on a German keyboard'],
    ['741', 'the number pad\'s columns']
  ]
  for (const [walk, what] of walks) t.ok(on(walk), `${what}: ${walk}`)
})

t.test('no line is a part of another, and no key is twice on one', async (t) => {
  const parts = KEY_LINES.filter((line) => KEY_LINES.some((other) => other !== line && (other.includes(line) || other.includes(backwards(line)))))
  t.same(parts, [], 'a walk along a part is a walk along the whole')
  t.same(KEY_LINES.filter((line) => new Set(line).size !== line.length), [], 'a key twice on a line would have two places on it')
  t.same(KEY_LINES.filter((line) => line.length < 3), [], 'each line at least three keys long: the shortest walk')
})

t.test('keys that are not neighbours on any of the layouts are on no line together', async (t) => {
  for (const jump of ['qet', 'q3', 'pq', 'm1', 'zse5', '1a3']) t.notOk(on(jump), jump)
})
