// settleAll: a failure is reported only once every fill has ended (the FUSE read buffer
// must not be written after the reply), and then it is the first failure's error.
import t from 'tap'
import { settleAll } from '../../../src/common/settle-all.js'

t.test('rejects only after the slow fill has ended, with the first error', async t => {
  const buf = Buffer.alloc(4)
  let slowDone = false
  const fast = Promise.reject(new Error('first'))
  const slow = new Promise<void>(resolve => setTimeout(() => { buf.fill(7); slowDone = true; resolve() }, 50))
  const late = new Promise<void>((_resolve, reject) => setTimeout(() => { reject(new Error('second')) }, 10))
  await t.rejects(settleAll([fast, slow, late]), { message: 'first' })
  t.ok(slowDone, 'the slow fill had finished before the rejection')
  t.same([...buf], [7, 7, 7, 7])
})

t.test('resolves when all succeed; one promise passes straight through', async t => {
  let n = 0
  await settleAll([1, 2, 3].map(async () => { n++ }))
  t.equal(n, 3)
  await t.rejects(settleAll([Promise.reject(new Error('only'))]), { message: 'only' })
  await settleAll([])
})
