#!/usr/bin/env node
// Metadata-heavy workloads through a real hissdfs-mount, the way bench/src/workloads run
// them (QUICK sizes), without the rest of the harness: starts a NameServer, 3 DataServers
// (replication 3 unless REPL=1) and a mount from this checkout's dist/ in a temp dir, runs
//   300 x 4 KiB create+write+close, `ls -l` (caches dropped), read back, `rm -r`,
//   200 mkdir, 400 stat (caches dropped), `tar xf` of node_modules/yaml (+ diff -r), rm -r,
//   and (ONLY=fsync, not by default) 200 x (4 KiB pwrite at a random offset of a 64 MiB
//   file + fsync), as fio's randwrite --fsync=1 row does (the written bytes are checked),
// and prints one line per workload. Root only (FUSE, allow_other, drop_caches).
// Usage: node bench/mount-micro.mjs [reps]     env: REPL=1|3, KEEP=1 (leave temp dir),
//        MOUNT_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" (node flags for the mount),
//        DS_ARGS (the same for the DataServers), NS_ARGS (for the NameServer),
//        ONLY=small,meta,tar,fsync   LOG=debug (mount log level)   NS_SYNC=full|normal (nameserver.sync)
//        CPU=1: also print each process's CPU time (user+system, /proc/PID/stat) per item of
//        each phase, summed over the reps: steadier than the rates on a shared machine
import { spawn, execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, statSync, writeSync, writeFileSync, mkdtempSync, rmSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..')
const cli = join(repo, 'dist/src/cli/main.js')
const mountMain = join(repo, 'dist/src/fuse/main.js')
const reps = Number(process.argv[2] ?? 1)
const repl = Number(process.env.REPL ?? 3)
const only = new Set((process.env.ONLY ?? 'small,meta,tar').split(','))
const base = mkdtempSync(join(tmpdir(), 'hiss-mm-'))
const procs = []

function startDaemon (name, args, re) {
  const log = openSync(join(base, `${name}.log`), 'a')
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', log] })
  procs.push({ name, child })
  return new Promise((resolve, reject) => {
    let buf = ''
    const t = setTimeout(() => reject(new Error(`${name} did not start`)), 60000)
    child.stdout.on('data', d => {
      buf += d
      const m = re.exec(buf)
      if (m) { clearTimeout(t); resolve(m) }
    })
    child.on('exit', c => { clearTimeout(t); reject(new Error(`${name} exited ${c}: see ${base}/${name}.log`)) })
  })
}

function dropCaches () { execFileSync('bash', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches']) }
/** CPU seconds each process used during the last timed() call (see cpuNow). */
let lastCpu = {}
/** Seconds `fn` took; its CPU per process goes to lastCpu (read outside the timed span). */
function timed (fn) {
  const c0 = cpuNow()
  const t0 = process.hrtime.bigint()
  fn()
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  lastCpu = Object.fromEntries(Object.entries(cpuNow()).map(([name, t]) => [name, t - (c0[name] ?? 0)]))
  return seconds
}
function sh (cmd) { return execFileSync('bash', ['-c', cmd], { maxBuffer: 1 << 26 }).toString() }

function content (i) {
  const out = Buffer.alloc(4096)
  let off = 0; let b = 0
  while (off < 4096) off += createHash('sha256').update(`s:${i}:${b++}`).digest().copy(out, off)
  return out
}

async function main () {
  const common = { 'nameserver.address': '127.0.0.1:0', 'cluster.secret': randomBytes(24).toString('hex'), replication: repl, 'safemode.extension.ms': 0, 'log.level': 'warn' }
  mkdirSync(join(base, 'ns'))
  writeFileSync(join(base, 'ns.json'), JSON.stringify({ ...common, 'nameserver.root.dir': join(base, 'ns'), ...(process.env.NS_SYNC ? { 'nameserver.sync': process.env.NS_SYNC } : {}) }))
  const m = await startDaemon('nameserver', [...(process.env.NS_ARGS ?? '').split(' ').filter(Boolean), cli, 'nameserver', '--config', join(base, 'ns.json')], /listening on (\S+):(\d+)/)
  common['nameserver.address'] = `127.0.0.1:${m[2]}`
  for (let i = 1; i <= 3; i++) {
    mkdirSync(join(base, `ds${i}`))
    writeFileSync(join(base, `ds${i}.json`), JSON.stringify({ ...common, 'dataserver.root.dir': join(base, `ds${i}`), 'dataserver.address': '127.0.0.1:0' }))
    await startDaemon(`ds${i}`, [...(process.env.DS_ARGS ?? '').split(' ').filter(Boolean), cli, 'dataserver', '--config', join(base, `ds${i}.json`)], /listening on/)
  }
  writeFileSync(join(base, 'client.json'), JSON.stringify({ ...common, 'log.level': process.env.LOG ?? 'warn' }))
  for (let i = 0; i < 240; i++) {
    try {
      const r = await (await fetch(`http://${common['nameserver.address']}/v1/ping`)).json()
      if (r.safeMode === false && r.liveDataServers >= 3) break
    } catch {}
    await new Promise(resolve => setTimeout(resolve, 250))
  }
  const mnt = join(base, 'mnt')
  mkdirSync(mnt)
  const extra = (process.env.MOUNT_ARGS ?? '').split(' ').filter(Boolean)
  await startDaemon('mount', [...extra, mountMain, '--config', join(base, 'client.json'), mnt], /mounted at/)
  // warm up (first block allocation, connections)
  writeFileSync(join(mnt, 'warm'), 'x'); readFileSync(join(mnt, 'warm')); rmSync(join(mnt, 'warm'))

  const tarball = join(base, 'yaml.tar')
  sh(`tar cf ${tarball} -C ${join(repo, 'node_modules')} yaml`)
  const results = {}
  const counts = []
  const logFile = join(base, 'mount.log')
  let logOff = 0
  const cpu = {}
  const put = (k, v) => {
    (results[k] ??= []).push(v)
    const used = (cpu[k] ??= {})
    for (const [name, t] of Object.entries(lastCpu)) used[name] = (used[name] ?? 0) + t
    if (process.env.LOG !== 'debug') return
    // Debug log: what each phase cost in FUSE ops, NameServer requests and block stores.
    // Byte offsets: what was read is skipped next time, whatever characters it held.
    const bytes = readFileSync(logFile).subarray(logOff)
    logOff += bytes.length
    const text = bytes.toString('utf8')
    const c = {}
    for (const line of text.split('\n')) {
      const m = /"msg":"(op|op failed|nameserver request|block stored)"/.exec(line)
      if (!m) continue
      let key
      if (m[1] === 'nameserver request') key = `NS ${/"req":"([^"]+)"/.exec(line)?.[1]}${line.includes('"code":"ok"') ? '' : ' (' + /"code":"([^"]+)"/.exec(line)?.[1] + ')'}`
      else if (m[1] === 'block stored') key = 'DS PUT'
      else key = `fuse ${/"op":"(\S+)/.exec(line)?.[1]}${m[1] === 'op failed' ? ' (failed)' : ''}`
      c[key] = (c[key] ?? 0) + 1
    }
    counts.push([k, c])
  }
  /** Leave what ran since the last put() (set-up, clean-up) out of the next phase's counts. */
  const skipLog = () => { if (process.env.LOG === 'debug') logOff = statSync(logFile).size }
  for (let rep = 0; rep < reps; rep++) {
    if (only.has('small')) {
      const dir = join(mnt, `small-${rep}`)
      mkdirSync(dir)
      skipLog()
      const files = Array.from({ length: 300 }, (_v, i) => content(i))
      put('create files/s', 300 / timed(() => {
        for (let i = 0; i < 300; i++) {
          const fd = openSync(join(dir, `f${i}`), 'w')
          writeSync(fd, files[i]); closeSync(fd)
        }
      }))
      dropCaches()
      let lsOut
      put('ls -l s', timed(() => { lsOut = sh(`ls -l ${dir}`) }))
      const lines = lsOut.trim().split('\n').filter(l => l.startsWith('-'))
      if (lines.length !== 300 || lines.some(l => l.split(/\s+/)[4] !== '4096')) throw new Error('ls -l wrong')
      let bad = 0
      put('read files/s', 300 / timed(() => {
        for (let i = 0; i < 300; i++) if (!readFileSync(join(dir, `f${i}`)).equals(files[i])) bad++
      }))
      if (bad) throw new Error(`${bad} files read back wrong`)
      put('rm -r s', timed(() => sh(`rm -r ${dir}`)))
      if (existsSync(dir)) throw new Error('rm -r left the dir')
    }
    if (only.has('meta')) {
      const dir = join(mnt, `meta-${rep}`)
      mkdirSync(dir)
      skipLog()
      put('mkdir ops/s', 200 / timed(() => { for (let i = 0; i < 200; i++) mkdirSync(join(dir, `d${i}`)) }))
      dropCaches()
      put('stat ops/s', 400 / timed(() => { for (let i = 0; i < 400; i++) if (!statSync(join(dir, `d${i % 200}`)).isDirectory()) throw new Error('not a dir') }))
      sh(`rm -rf ${dir}`)
    }
    if (only.has('tar')) {
      const dir = join(mnt, `tar-${rep}`)
      mkdirSync(dir)
      skipLog()
      put('tar xf s', timed(() => sh(`tar xf ${tarball} -C ${dir}`)))
      sh(`diff -r ${join(repo, 'node_modules/yaml')} ${join(dir, 'yaml')}`)
      put('tar rm -r s', timed(() => sh(`rm -r ${dir}`)))
    }
    if (only.has('fsync')) {
      // A file laid out first (untimed), then patched in place 4 KiB at a time, each write
      // made durable before the next: every op is a block patch and a commit.
      const file = join(mnt, `fsync-${rep}.dat`)
      const fileBytes = 64 * 1024 * 1024
      const piece = Buffer.alloc(1024 * 1024)
      let fd = openSync(file, 'w')
      for (let off = 0; off < fileBytes; off += piece.length) writeSync(fd, piece, 0, piece.length, off)
      fsyncSync(fd); closeSync(fd)
      fd = openSync(file, 'r+')
      const offsets = Array.from({ length: 200 }, () => Math.floor(Math.random() * (fileBytes / 4096)) * 4096)
      const pages = offsets.map((_o, i) => content(10000 + i))
      skipLog()
      put('fsync ops/s', 200 / timed(() => {
        for (let i = 0; i < 200; i++) { writeSync(fd, pages[i], 0, 4096, offsets[i]); fsyncSync(fd) }
      }))
      closeSync(fd)
      // The last write to each offset must be what reads back.
      const last = new Map(offsets.map((o, i) => [o, i]))
      fd = openSync(file, 'r')
      const back = Buffer.alloc(4096)
      for (const [o, i] of last) {
        readSync(fd, back, 0, 4096, o)
        if (!back.equals(pages[i])) throw new Error(`fsync phase: offset ${o} reads back wrong`)
      }
      closeSync(fd)
      rmSync(file)
    }
  }
  const per = { 'create files/s': 300, 'ls -l s': 300, 'read files/s': 300, 'rm -r s': 300, 'mkdir ops/s': 200, 'stat ops/s': 400, 'tar xf s': 257, 'tar rm -r s': 257, 'fsync ops/s': 200 }
  for (const [k, c] of counts) {
    console.log(`-- ${k}: per item (${per[k]})`)
    for (const [op, n] of Object.entries(c).sort((a, b) => b[1] - a[1])) console.log(`   ${op.padEnd(34)} ${(n / per[k]).toFixed(2)}`)
  }
  if (process.env.CPU) {
    for (const [k, c] of Object.entries(cpu)) {
      const n = per[k] * reps
      console.log(`-- ${k}: CPU us per item: ` + Object.entries(c).map(([name, t]) => `${name} ${Math.round(t * 1e6 / n)}`).join(', ') + `, all ${Math.round(Object.values(c).reduce((a, b) => a + b, 0) * 1e6 / n)}`)
    }
  }
  const fmt = v => v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toFixed(3)
  for (const [k, vs] of Object.entries(results)) {
    const s = [...vs].sort((a, b) => a - b)
    console.log(`${k.padEnd(16)} median ${fmt(s[Math.floor(s.length / 2)])}  (${vs.map(fmt).join(', ')})`)
  }
}

/** CPU seconds (user + system) so far of each daemon, of this process and of its finished children. */
function cpuNow () {
  const out = {}
  const tick = 100 // USER_HZ on Linux
  const fields = pid => { const t = readFileSync(`/proc/${pid}/stat`, 'utf8'); return t.slice(t.lastIndexOf(')') + 2).split(' ') }
  for (const p of procs) {
    try {
      const f = fields(p.child.pid)
      out[p.name] = (Number(f[11]) + Number(f[12])) / tick
    } catch {}
  }
  const self = process.cpuUsage()
  out.bench = (self.user + self.system) / 1e6
  // The tools run through sh (ls, rm, tar, diff): children's time once they were waited for.
  const f = fields('self')
  out.tools = (Number(f[13]) + Number(f[14])) / tick
  return out
}

async function stop () {
  const mnt = join(base, 'mnt')
  const mount = procs.find(p => p.name === 'mount')
  if (mount && mount.child.exitCode === null) {
    mount.child.kill('SIGTERM')
    await new Promise(resolve => { const t = setTimeout(resolve, 15000); mount.child.on('exit', () => { clearTimeout(t); resolve() }) })
  }
  try { execFileSync('fusermount', ['-u', '-z', mnt], { stdio: 'ignore' }) } catch {}
  for (const p of procs.reverse()) {
    if (p.child.exitCode === null) {
      p.child.kill('SIGTERM')
      await new Promise(resolve => { const t = setTimeout(() => { p.child.kill('SIGKILL'); resolve() }, 5000); p.child.on('exit', () => { clearTimeout(t); resolve() }) })
    }
  }
  if (process.env.KEEP) console.log(`kept ${base}`)
  else rmSync(base, { recursive: true, force: true })
}

let code = 0
try { await main() } catch (err) { console.error(err); code = 1 }
await stop()
process.exit(code)
