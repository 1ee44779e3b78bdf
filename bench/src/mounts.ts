// FUSE mount points: is it mounted, unmount it (politely first, lazily if it stays busy).
import { readFile } from 'node:fs/promises'
import { run, sleep } from './proc.js'

export async function isMounted (mnt: string): Promise<boolean> {
  const text = await readFile('/proc/self/mounts', 'utf8')
  return text.split('\n').some((l) => l.split(' ')[1] === mnt)
}

export async function unmount (mnt: string): Promise<void> {
  for (let i = 0; i < 5; i++) {
    if (!(await isMounted(mnt))) return
    await run('fusermount', ['-u', mnt], { timeoutMs: 30000 })
    if (!(await isMounted(mnt))) return
    await sleep(1000)
  }
  await run('fusermount', ['-u', '-z', mnt], { timeoutMs: 30000 })
}
