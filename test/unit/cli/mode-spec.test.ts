// chmod mode arguments: octal and symbolic, checked against what chmod(1) does to a
// local file for the same starting mode (the expected values are coreutils' results).
import t from 'tap'
import { parseMode } from '../../../src/cli/mode-spec.js'
import { parseOwner } from '../../../src/cli/commands/chown.js'

t.test('octal modes replace the bits', async t => {
  t.equal(parseMode('755')(0o600, false), 0o755)
  t.equal(parseMode('0644')(0o4777, false), 0o644)
  t.equal(parseMode('2750')(0o600, true), 0o2750)
  t.equal(parseMode('7')(0o644, false), 0o007)
})

t.test('symbolic modes change the bits as chmod(1) does', async t => {
  const cases: Array<[string, number, boolean, number]> = [
    ['u+x', 0o644, false, 0o744],
    ['+x', 0o644, false, 0o755],
    ['a+x', 0o644, false, 0o755],
    ['go-w', 0o666, false, 0o644],
    ['go-rx', 0o755, true, 0o700],
    ['o=r', 0o777, false, 0o774],
    ['u=rw,g=r,o=', 0o777, false, 0o640],
    ['a-w', 0o666, false, 0o444],
    ['u+s', 0o755, false, 0o4755],
    ['g+s', 0o755, true, 0o2755],
    ['+t', 0o777, true, 0o1777],
    ['o+t', 0o777, true, 0o1777],
    ['u+t', 0o777, true, 0o777],
    ['a+X', 0o644, false, 0o644],
    ['a+X', 0o744, false, 0o755],
    ['a+X', 0o600, true, 0o711],
    ['u-s', 0o4755, false, 0o755],
    ['=', 0o755, false, 0o000],
  ]
  for (const [spec, from, isDir, want] of cases) {
    t.equal(parseMode(spec)(from, isDir), want, `${spec} on ${from.toString(8)}${isDir ? ' (dir)' : ''} gives ${want.toString(8)}`)
  }
})

t.test('bad modes are refused', async t => {
  for (const bad of ['u+q', '8', '17777', 'x', 'u+x,', '', 'rwx']) {
    t.throws(() => parseMode(bad), { code: 'EINVAL' }, JSON.stringify(bad))
  }
})

t.test('owners: ids, names from /etc, :GROUP', async t => {
  t.same(parseOwner('1000'), { uid: 1000 })
  t.same(parseOwner('1000:100'), { uid: 1000, gid: 100 })
  t.same(parseOwner(':100'), { gid: 100 })
  t.same(parseOwner('1000:'), { uid: 1000 })
  t.same(parseOwner('root:root'), { uid: 0, gid: 0 }, 'names from /etc/passwd and /etc/group')
  t.throws(() => parseOwner(':'), { code: 'EINVAL' })
  t.throws(() => parseOwner('no-such-user-here'), { code: 'EINVAL' })
  t.throws(() => parseOwner('1:no-such-group-here'), { code: 'EINVAL' })
  t.throws(() => parseOwner('99999999999'), { code: 'EINVAL' }, 'an id out of range')
})
