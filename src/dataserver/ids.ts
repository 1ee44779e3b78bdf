// The DataServer's persistent identity: a random UUID in `<root>/id`, created on the
// first start and kept forever, so a restarted server is recognised as the same one
// (its replicas stay attributed to it). Runs once at startup: synchronous fs is fine.
import { randomUUID } from 'node:crypto'
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { HissError, fromNodeError } from '../common/errors.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

export function loadOrCreateId (idFile: string): string {
  let text: string | undefined
  try {
    text = readFileSync(idFile, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fromNodeError(err, `reading ${idFile}`)
  }
  if (text !== undefined) {
    const id = text.trim()
    // A mangled id file must stop the server: inventing a new id would orphan every replica.
    if (!UUID.test(id)) throw new HissError('CONFIG', `DataServer id file ${idFile} does not hold a UUID`)
    return id
  }
  const id = randomUUID()
  try {
    mkdirSync(dirname(idFile), { recursive: true })
    const tmp = `${idFile}.tmp`
    writeFileSync(tmp, id + '\n', { mode: 0o644 })
    const fd = openSync(tmp, 'r')
    try { fsyncSync(fd) } finally { closeSync(fd) }
    renameSync(tmp, idFile)
    const dfd = openSync(dirname(idFile), 'r')
    try { fsyncSync(dfd) } finally { closeSync(dfd) }
  } catch (err) {
    throw fromNodeError(err, `creating ${idFile}`)
  }
  return id
}
