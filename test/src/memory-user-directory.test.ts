import t from 'tap'
import { MemoryUserDirectory } from '../../src/memory-user-directory.js'
import { userDirectoryContract } from './user-directory.contract.js'

t.test('MemoryUserDirectory fulfils the UserDirectory contract', async (t) => {
  userDirectoryContract(t, async () => new MemoryUserDirectory())
})
