// The pure parts of the mount: libfuse options, mountpoint checks, stat conversion.
import t from 'tap'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseConfig } from '../../src/common/config.js'
import type { FileStat } from '../../src/common/protocol.js'
import { checkMountpoint, fuseOptionString } from '../../src/fuse/mount.js'
import { toFuseStat, toFuseStatfs } from '../../src/fuse/stat-convert.js'

t.test('libfuse options ride in on fsname', async t => {
  const cfg = parseConfig({ 'nameserver.address': '127.0.0.1:1', 'fuse.attr.timeout.ms': 1500 })
  const o = fuseOptionString(cfg).split(',')
  t.equal(o[0], 'hissdfs', 'fsname first')
  for (const want of ['big_writes', 'max_write=131072', 'use_ino', 'attr_timeout=0', 'entry_timeout=1.5']) t.ok(o.includes(want), want)
  t.notOk(o.includes('nonempty'))
  t.ok(fuseOptionString(cfg, { nonempty: true }).split(',').includes('nonempty'))
  t.ok(fuseOptionString(cfg).length < 900, 'fits fuse-native\'s 1024-byte option buffer')
})

t.test('mountpoint checks', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'hiss-mp-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await mkdir(join(dir, 'empty'))
  t.same(await checkMountpoint(join(dir, 'empty')), { path: join(dir, 'empty'), placeholder: false })
  await mkdir(join(dir, 'kept'))
  await writeFile(join(dir, 'kept', '.gitkeep'), '')
  t.same(await checkMountpoint(join(dir, 'kept')), { path: join(dir, 'kept'), placeholder: true }, '.gitkeep only')
  await writeFile(join(dir, 'kept', 'x'), '')
  await t.rejects(checkMountpoint(join(dir, 'kept')), { code: 'EBUSY', message: /not empty/ })
  await t.rejects(checkMountpoint(join(dir, 'nope')), { code: 'ENOENT' })
  await t.rejects(checkMountpoint(join(dir, 'kept', 'x')), { code: 'ENOTDIR' })
})

t.test('stat conversion', async t => {
  const st: FileStat = { ino: 2 ** 33 + 7, type: 'symlink', mode: 0o777, uid: 5, gid: 6, size: 0, nlink: 1, atimeNs: '1000000001', mtimeNs: '2', ctimeNs: '3', replication: 0, blockSize: 0, target: 'héllo' }
  const f = toFuseStat(st)
  t.equal(f.mode, 0o120777)
  t.equal(f.size, 6, 'symlink size is the target length in bytes')
  t.equal(f.ino, 7, '32-bit inode (fuse-native)')
  t.equal(f.atimeNs, '1000000001', 'nanoseconds passed through')
  t.equal(toFuseStat({ ...st, type: 'dir', mode: 0o755, target: undefined }).mode, 0o40755)
  t.equal(toFuseStat({ ...st, type: 'file', mode: 0o4644, size: 1025, target: undefined }).blocks, 3)
  const fs = toFuseStatfs({ capacity: 2 ** 46, used: 2 ** 45, remaining: 2 ** 44, files: 10, blockSize: 64 << 20 })
  t.ok(fs.blocks <= 0xffffffff && fs.blocks * fs.frsize === 2 ** 46, 'capacity fits 32-bit counts')
  t.equal(fs.bavail * fs.frsize, 2 ** 44)
  t.equal(fs.namemax, 255)
})
