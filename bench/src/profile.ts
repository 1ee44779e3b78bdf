// Summaries of the V8 CPU profiles (`node --cpu-prof`) written by the HissDFS processes
// of a --profile run: self time per function (name + file:line), from the profile's
// nodes, samples and timeDeltas, summed over every profile a process role wrote.
// Sample i lasts until sample i+1 (the last one until endTime), as in Chrome DevTools.
import { readdir, readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { markdownTable } from './report.js'

export interface CallFrame { functionName: string, url: string, lineNumber: number, columnNumber?: number }
export interface ProfileNode { id: number, callFrame: CallFrame, hitCount?: number, children?: number[] }
export interface CpuProfile { nodes: ProfileNode[], startTime: number, endTime: number, samples?: number[], timeDeltas?: number[] }

export interface FunctionTime { name: string, location: string, selfUs: number }

export interface ProfileSummary {
  profiles: number
  /** Sampled time (µs), idle included. */
  totalUs: number
  /** Time in "(idle)": the process waited for I/O or timers. */
  idleUs: number
  /** Every function with self time, most first ("(idle)" excluded). */
  functions: FunctionTime[]
}

export const IDLE = '(idle)'

/** A script URL as a short path: relative to the repo, or from node_modules/ on. */
export function shortUrl (url: string, repo: string): string {
  let p = url.startsWith('file://') ? decodeURIComponent(url.slice('file://'.length)) : url
  if (p.startsWith(repo + '/')) p = relative(repo, p)
  const nm = p.lastIndexOf('/node_modules/')
  if (nm >= 0) p = p.slice(nm + 1)
  return p
}

/** Add one profile's self times to `acc` (key: name + location); returns sampled and idle µs. */
export function addSelfTimes (profile: CpuProfile, repo: string, acc: Map<string, FunctionTime>): { totalUs: number, idleUs: number } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const samples = profile.samples ?? []
  const deltas = profile.timeDeltas ?? []
  // Timestamps: startTime plus the running sum of the deltas.
  const ts: number[] = []
  let t = profile.startTime
  for (let i = 0; i < samples.length; i++) { t += deltas[i] ?? 0; ts.push(t) }
  let totalUs = 0
  let idleUs = 0
  for (let i = 0; i < samples.length; i++) {
    const start = ts[i] ?? 0
    const end = i + 1 < samples.length ? (ts[i + 1] ?? start) : Math.max(start, profile.endTime)
    const dur = Math.max(0, end - start)
    const node = byId.get(samples[i] ?? -1)
    if (node === undefined) continue
    totalUs += dur
    const f = node.callFrame
    const name = f.functionName === '' ? '(anonymous)' : f.functionName
    if (name === IDLE) { idleUs += dur; continue }
    const location = f.url === '' ? '' : `${shortUrl(f.url, repo)}:${f.lineNumber + 1}`
    const key = `${name}\u0000${location}`
    const cur = acc.get(key)
    if (cur === undefined) acc.set(key, { name, location, selfUs: dur })
    else cur.selfUs += dur
  }
  return { totalUs, idleUs }
}

export function summarizeProfiles (profiles: CpuProfile[], repo: string): ProfileSummary {
  const acc = new Map<string, FunctionTime>()
  let totalUs = 0
  let idleUs = 0
  for (const p of profiles) {
    const r = addSelfTimes(p, repo, acc)
    totalUs += r.totalUs
    idleUs += r.idleUs
  }
  const functions = [...acc.values()].sort((a, b) => b.selfUs - a.selfUs || a.name.localeCompare(b.name))
  return { profiles: profiles.length, totalUs, idleUs, functions }
}

/** Markdown for one process role: time sampled and the top `top` functions by self time. */
export function summaryMarkdown (title: string, s: ProfileSummary, top = 15): string {
  const busy = s.totalUs - s.idleUs
  const head = `### ${title}\n\n${s.profiles} profile(s); ${(s.totalUs / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (${s.totalUs > 0 ? ((busy / s.totalUs) * 100).toFixed(0) : '0'}%), the rest idle.`
  if (s.functions.length === 0) return `${head}\n\nNo busy samples.`
  const body = s.functions.slice(0, top).map((f) => [
    (f.selfUs / 1000).toFixed(0),
    busy > 0 ? `${((f.selfUs / busy) * 100).toFixed(1)}%` : '–',
    '`' + f.name.replace(/\|/g, '/') + '`',
    f.location === '' ? '' : '`' + f.location + '`',
  ])
  return `${head}\n\n${markdownTable(['self ms', '% of busy', 'function', 'location'], body)}`
}

async function listDirs (dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name).sort()
  } catch {
    return []
  }
}

/** Every `<root>/<system>/<role>/*.cpuprofile`, summarised per system and role. */
export async function summarizeProfileTree (root: string, repo: string): Promise<Array<{ system: string, role: string, summary: ProfileSummary, unreadable: string[] }>> {
  const out: Array<{ system: string, role: string, summary: ProfileSummary, unreadable: string[] }> = []
  for (const system of await listDirs(root)) {
    for (const role of await listDirs(join(root, system))) {
      const dir = join(root, system, role)
      const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile')).sort()
      const profiles: CpuProfile[] = []
      const unreadable: string[] = []
      for (const f of files) {
        try {
          profiles.push(JSON.parse(await readFile(join(dir, f), 'utf8')) as CpuProfile)
        } catch (err) {
          unreadable.push(`${f}: ${(err as Error).message.slice(0, 100)}`)
        }
      }
      out.push({ system, role, summary: summarizeProfiles(profiles, repo), unreadable })
    }
  }
  return out
}

export type ProfileTree = Awaited<ReturnType<typeof summarizeProfileTree>>

/** The whole profile report: one section per system and role. */
export function profileTreeMarkdown (title: string, intro: string[], tree: ProfileTree, top = 15): string {
  const md: string[] = [`# ${title}`, '', ...intro.flatMap((p) => [p, ''])]
  if (tree.length === 0) md.push('No profiles were found.', '')
  for (const e of tree) {
    if (e.summary.profiles === 0) {
      md.push(`### ${e.system} / ${e.role}`, '', 'No profile was written: the process did not exit by itself (killed, or still running).', '')
    } else {
      md.push(summaryMarkdown(`${e.system} / ${e.role}`, e.summary, top), '')
    }
    if (e.unreadable.length > 0) md.push(...e.unreadable.map((u) => `- unreadable: ${u}`), '')
  }
  return md.join('\n')
}
