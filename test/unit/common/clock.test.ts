import t from 'tap'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { ManualClock, every } from '../../../src/common/clock.js'

const CLOCK_JS = fileURLToPath(new URL('../../../src/common/clock.js', import.meta.url))

t.test('ManualClock fires due timers in time order, including ones they set', async t => {
  const c = new ManualClock()
  const fired: string[] = []
  c.setTimeout(() => { fired.push('b@20'); c.setTimeout(() => fired.push('d@25'), 5) }, 20)
  c.setTimeout(() => fired.push('a@10'), 10)
  const cancelled = c.setTimeout(() => fired.push('never'), 15)
  c.clearTimeout(cancelled)
  c.setTimeout(() => fired.push('c@40'), 40)
  c.advance(30)
  t.same(fired, ['a@10', 'b@20', 'd@25'])
  t.equal(c.now(), 30)
  t.equal(c.pendingTimers(), 1)
})

t.test('every() runs after each settle and stops', async t => {
  const c = new ManualClock()
  let runs = 0
  const stop = every(c, 100, () => { runs++ }, () => {})
  c.advance(350)
  await new Promise(resolve => setImmediate(resolve))
  c.advance(100)
  await new Promise(resolve => setImmediate(resolve))
  t.ok(runs >= 2, `ran ${runs} times`)
  stop()
  const before = runs
  c.advance(1000)
  t.equal(runs, before, 'no run after stop')
})

t.test('a SystemClock sleep keeps the process alive; a background timer does not', async t => {
  const run = (code: string): Promise<string> => new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', code], { timeout: 10000 }, (err, stdout) => { if (err !== null) reject(err); else resolve(stdout) })
  })
  const mod = JSON.stringify(CLOCK_JS)
  t.equal(await run(`const { SystemClock, sleep } = await import(${mod}); sleep(new SystemClock(), 200).then(() => console.log('woke'))`), 'woke\n')
  t.equal(await run(`const { SystemClock } = await import(${mod}); new SystemClock().setTimeout(() => console.log('fired'), 200)`), '', 'background timer: the process exits first')
})
