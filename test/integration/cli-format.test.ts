// The CLI's pure pieces, without a cluster: mode strings, error lines, remote paths.
import t from 'tap'
import { HissError } from '../../src/common/errors.js'
import { modeString, octalMode, longTime, table, humanBytes } from '../../src/cli/format.js'
import { errorText, formatFailure } from '../../src/cli/errors.js'
import { intoDirectory, toRemotePath } from '../../src/cli/remote-path.js'
import { resolveConfigPath } from '../../src/common/config-path.js'

t.test('mode strings', async t => {
  t.equal(modeString('file', 0o644), '-rw-r--r--')
  t.equal(modeString('dir', 0o755), 'drwxr-xr-x')
  t.equal(modeString('symlink', 0o777), 'lrwxrwxrwx')
  t.equal(modeString('file', 0o4755), '-rwsr-xr-x')
  t.equal(modeString('file', 0o2644), '-rw-r-Sr--')
  t.equal(modeString('dir', 0o1777), 'drwxrwxrwt')
  t.equal(modeString('dir', 0o1776), 'drwxrwxrwT')
  t.equal(octalMode(0o644), '0644')
})

t.test('times keep nanoseconds; sizes and tables', async t => {
  t.match(longTime('1767225600123456789'), /\.123456789 [+-]\d{4}$/)
  t.equal(humanBytes(512), '512 B')
  t.equal(humanBytes(1536), '1.5 KiB')
  t.same(table([['a', '1', 'x'], ['bbb', '22', 'y y']], [1]), ['a    1 x', 'bbb 22 y y'])
})

t.test('error lines', async t => {
  t.equal(formatFailure('cat', '/a', HissError.ENOENT('/a')), 'hissdfs: cat: /a: no such file or directory')
  t.equal(formatFailure('cat', '/a/b', HissError.ENOENT('/a')), 'hissdfs: cat: /a/b: no such file or directory: /a', 'a different path is kept')
  t.equal(formatFailure('rm', '/d', HissError.EISDIR()), 'hissdfs: rm: /d: is a directory')
  const local = Object.assign(new Error('ENOENT: no such file, open x'), { code: 'ENOENT' })
  t.equal(errorText(local, 'x'), 'no such file or directory', 'local fs errors use the table text')
  t.equal(errorText(new Error('boom')), 'boom')
  t.match(errorText(new Error('boom'), undefined, true), /^boom\nError: boom\n\s+at /, 'stack only in debug')
  t.equal(formatFailure(undefined, undefined, new HissError('CONFIG', 'unknown config key "x"')), 'hissdfs: unknown config key "x"')
})

t.test('remote paths', async t => {
  t.equal(toRemotePath('a/b'), '/a/b', 'relative to /')
  t.equal(toRemotePath('/a//b/'), '/a/b')
  t.throws(() => toRemotePath('/a/../b'), { code: 'EINVAL' })
  t.equal(intoDirectory('/d', './local/file.txt'), '/d/file.txt')
  t.equal(intoDirectory('/', '/x/y'), '/y')
  t.throws(() => intoDirectory('/d', '..'), { code: 'EINVAL' })
})

t.test('config lookup order', async t => {
  t.equal(resolveConfigPath('/x.json', { HISSDFS_CONFIG: '/y.json' }, 'client.json'), '/x.json')
  t.equal(resolveConfigPath(undefined, { HISSDFS_CONFIG: '/y.json' }, 'client.json'), '/y.json')
  t.match(resolveConfigPath(undefined, {}, 'client.json'), /configs\/client\.json$/)
})
