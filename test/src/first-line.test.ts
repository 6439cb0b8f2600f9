import { Readable } from 'node:stream'
import t from 'tap'
import { firstLine } from '../../src/first-line.js'

/** A stream that hands its bytes over in these reads, as a pipe hands over what has been written so far. */
const reads = (...chunks: Buffer[]) => Readable.from(chunks)
const utf8 = (text: string) => Buffer.from(text, 'utf8')

t.test('the first line, its line ending not part of it', async (t) => {
  t.equal(await firstLine(reads(utf8('first line\nsecond\n'))), 'first line')
  t.equal(await firstLine(reads(utf8('first line\r\nsecond'))), 'first line', 'a CRLF ending too')
  t.equal(await firstLine(reads(utf8('no ending'))), 'no ending', 'a last line without an ending')
  t.equal(await firstLine(reads(utf8('a\rb\n'))), 'a\rb', 'a carriage return inside the line is part of it')
  t.equal(await firstLine(reads()), '', 'nothing at all: an empty line')
})

t.test('a character whose bytes two reads split is read whole', async (t) => {
  const bytes = utf8('pässwörd 😀 long enough\n')
  // Cut inside "ä" (2 bytes) and inside the emoji (4 bytes).
  const emoji = bytes.indexOf(0xf0)
  t.equal(await firstLine(reads(bytes.subarray(0, 2), bytes.subarray(2, emoji + 2), bytes.subarray(emoji + 2))), 'pässwörd 😀 long enough')
  t.equal(await firstLine(Readable.from(['taken ', 'as strings too\n'])), 'taken as strings too', 'a stream of strings (an encoding set on it)')
})

t.test('bytes that are not UTF-8 in the first line give null, never U+FFFD', async (t) => {
  t.equal(await firstLine(reads(Buffer.from('p\xe4ssword\n', 'latin1'))), null, 'Latin-1')
  t.equal(await firstLine(reads(Buffer.from([0x61, 0xc3]))), null, 'a character cut short at the end')
  t.equal(await firstLine(reads(Buffer.from([0x61, 0xc0, 0xaf]))), null, 'an overlong encoding')
  t.equal(await firstLine(reads(utf8('first\n'), Buffer.from('\xff\n', 'latin1'))), 'first', 'a later line is not read')
  t.equal(await firstLine(reads(utf8('\ufffd\n'))), '\ufffd', 'U+FFFD itself, in UTF-8, is a character like any other')
})
