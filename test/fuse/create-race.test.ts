// create() when the name exists after all: what the mount sees when it lost a race
// with another client that made the file between the kernel's lookup and its create.
// The file layer (HissFuseFs) is driven directly against an in-process cluster, so the
// "lost race" is exact: the file is there before create() is called. No FUSE involved.
// The open flags the caller gave must still hold: O_EXCL fails, O_TRUNC truncates,
// O_APPEND appends, and the caller's permission on the file it did not make is checked
// (the kernel only checked the right to create in the directory).
import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { startCluster } from '../helpers/inprocess-cluster.js'
import { createClient } from '../../src/client/index.js'
import { SystemClock } from '../../src/common/clock.js'
import { createLogger } from '../../src/common/log.js'
import { ClientPool } from '../../src/fuse/client-pool.js'
import { HissFuseFs } from '../../src/fuse/fuse-fs.js'
import { Spool } from '../../src/fuse/spool.js'
import { O_APPEND, O_EXCL, O_RDWR, O_TRUNC, O_WRONLY } from '../../src/fuse/handles.js'

const O_CREAT = 0o100

t.test('create() of a name another client made meanwhile', async t => {
  const c = await startCluster(t, { dataServers: 1, replication: 1 })
  const clock = new SystemClock()
  const log = createLogger('test', 'warn')
  const spoolDir = await mkdtemp(join(tmpdir(), 'hiss-race-spool-'))
  t.teardown(() => rm(spoolDir, { recursive: true, force: true }))
  const spool = new Spool(spoolDir)
  const pool = new ClientPool(c.client, { uid: 0, gids: [0] }, id => createClient(c.cfg, { identity: id }), clock)
  const fs = new HissFuseFs({ client: c.client, pool, cfg: c.cfg, clock, log, spool })
  t.teardown(async () => { await pool.close(); await spool.destroy() })
  // Another user, as the patched fuse-native reports callers (groups come from /proc/pid).
  const bob = { uid: 2000, gid: 2000, pid: process.pid }

  await c.client.mkdir('/d', { mode: 0o777 })
  const made = async (name: string, body: string, mode: number): Promise<string> => {
    const p = `/d/${name}`
    await c.client.put(p, Readable.from([Buffer.from(body)]))
    await c.client.setattr(p, { mode, uid: 1000, gid: 1000 })
    return p
  }
  const content = async (p: string): Promise<string> => {
    const parts: Buffer[] = []
    await c.client.readInto(p, b => { parts.push(Buffer.from(b)) })
    return Buffer.concat(parts).toString()
  }

  // The kernel believes it made an empty file: it asks for writes from offset 0.
  const writeAt0 = async (fd: number, text: string): Promise<void> => {
    await fs.write(fd, Buffer.from(text), text.length, 0)
    await fs.flush(fd)
    await fs.release(fd)
  }

  await t.test('O_EXCL: EEXIST', async t => {
    const p = await made('excl', 'theirs', 0o666)
    await t.rejects(fs.create(p, 0o644, O_CREAT | O_EXCL | O_WRONLY, bob), { code: 'EEXIST' })
    t.equal(await content(p), 'theirs', 'unchanged')
  })

  await t.test('O_TRUNC: the file is opened and truncated', async t => {
    const p = await made('trunc', 'theirs, longer than ours', 0o666)
    await writeAt0(await fs.create(p, 0o644, O_CREAT | O_TRUNC | O_WRONLY, bob), 'ours')
    t.equal(await content(p), 'ours', 'no tail of the old content is left')
  })

  await t.test('O_APPEND: writes go to the end', async t => {
    const p = await made('append', 'theirs\n', 0o666)
    await writeAt0(await fs.create(p, 0o644, O_CREAT | O_APPEND | O_WRONLY, bob), 'ours\n')
    t.equal(await content(p), 'theirs\nours\n', 'appended, not written over')
  })

  await t.test('no permission on the file made meanwhile: EACCES, nothing changes', async t => {
    const p = await made('private', 'secret', 0o600)
    await t.rejects(fs.create(p, 0o644, O_CREAT | O_TRUNC | O_WRONLY, bob), { code: 'EACCES' }, 'write')
    await t.rejects(fs.create(p, 0o644, O_CREAT | O_RDWR, bob), { code: 'EACCES' }, 'read and write')
    t.equal(await content(p), 'secret', 'not truncated')
    const ro = await made('readonly', 'shared', 0o644)
    await t.rejects(fs.create(ro, 0o644, O_CREAT | O_WRONLY, bob), { code: 'EACCES' }, 'write on a read-only file')
    t.equal(await content(ro), 'shared')
    // The mount's own identity (root) may, as the kernel would let root.
    const fd = await fs.create(p, 0o644, O_CREAT | O_WRONLY | O_APPEND, { uid: 0, gid: 0, pid: process.pid })
    await fs.release(fd)
    t.equal(await content(p), 'secret', 'root opens it; nothing written')
  })
})
