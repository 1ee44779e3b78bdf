// The data path's V8 setting (src/common/gc-tuning.ts, mount and DataServer): applied by default, left alone when the
// user names incremental marking in node's own flags.
import t from 'tap'
import { DATA_PATH_V8_FLAGS, tuneGc } from '../../../src/common/gc-tuning.js'

t.test('incremental marking is switched off unless the user chose otherwise', async t => {
  t.equal(DATA_PATH_V8_FLAGS, '--no-incremental-marking')
  t.equal(tuneGc(['--incremental-marking'], ''), false, 'an explicit node flag wins')
  t.equal(tuneGc([], '--max-old-space-size=100 --incremental-marking'), false, 'so does NODE_OPTIONS')
  t.equal(tuneGc(['--cpu-prof'], '--max-old-space-size=100'), true, 'other flags: applied')
})
