// Reads tap's raw TAP output and prints the one line CI reads:
// "N passed, N failed[, N skipped]", from tap's own final counts line
// ("# { total, pass, fail, skip, todo }"). Skipped tests are listed with their reasons.
import { readFileSync } from 'node:fs'

const text = readFileSync(process.argv[2], 'utf8')
const lines = text.split('\n')
let counts
for (const line of lines) {
  const m = /^# (\{ total: .* \})\s*$/.exec(line)
  if (m) counts = m[1]
}
const skips = lines.filter(l => /# SKIP/.test(l)).map(l => l.trim())
if (skips.length > 0) {
  console.log('skipped:')
  for (const s of skips) console.log('  ' + s)
}
if (counts === undefined) {
  console.log('tap printed no final counts (the run crashed or was interrupted)')
  console.log('0 passed, 1 failed')
  process.exit(1)
}
const get = k => { const m = new RegExp(`\\b${k}: (\\d+)`).exec(counts); return m ? Number(m[1]) : 0 }
const pass = get('pass'); const fail = get('fail'); const skip = get('skip'); const todo = get('todo')
if (pass + fail === 0) {
  console.log('no test ran')
  console.log('0 passed, 1 failed')
  process.exit(1)
}
let out = `${pass} passed, ${fail} failed`
if (skip > 0) out += `, ${skip} skipped`
if (todo > 0) out += `, ${todo} todo`
console.log(out)
process.exit(fail > 0 ? 1 : 0)
