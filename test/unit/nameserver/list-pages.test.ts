// Directory listings in pages (GET /v1/ns/list with limit/after/from): every entry exactly
// once, in the names' byte order, with `more` telling whether further names follow.
import t from 'tap'
import { MAX_LIST_LIMIT } from '../../../src/common/protocol.js'
import { ROOT, makeCore } from './helpers.js'

t.test('pages cover a directory exactly once, in byte order', async t => {
  const { core } = makeCore(t)
  const ns = core.ns
  ns.mkdir('/d', ROOT)
  // Byte order, not locale order: upper case before lower case, 'é' (two UTF-8 bytes) last.
  const names = ['b', 'a', 'B', 'a0', 'é', 'z', 'A', '0', 'aa', 'ab']
  for (const n of names) ns.create(`/d/${n}`, ROOT)
  const sorted = [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)))
  t.same(ns.list('/d', ROOT).map(e => e.name), sorted, 'the whole listing')

  for (const limit of [1, 3, 4, 10, 11]) {
    const seen: string[] = []
    let after: string | undefined
    let pages = 0
    for (;;) {
      const page = ns.listPage('/d', ROOT, { limit, start: after === undefined ? undefined : { after } })
      pages++
      t.ok(page.entries.length <= limit, `page of at most ${limit}`)
      seen.push(...page.entries.map(e => e.name))
      if (page.more !== true) break
      t.equal(page.entries.length, limit, 'a page with more after it is full')
      after = page.entries[page.entries.length - 1]!.name
    }
    t.same(seen, sorted, `limit ${limit}: every name once, in order`)
    t.equal(pages, Math.max(1, Math.ceil(names.length / limit)), `limit ${limit}: no empty last page when the count divides`)
  }

  t.same(ns.listPage('/d', ROOT, { limit: 3, start: { from: 'a0' } }).entries.map(e => e.name), ['a0', 'aa', 'ab'], 'from: inclusive')
  t.same(ns.listPage('/d', ROOT, { limit: 3, start: { after: 'a0' } }).entries.map(e => e.name), ['aa', 'ab', 'b'], 'after: exclusive')
  t.same(ns.listPage('/d', ROOT, { limit: 3, start: { from: 'a00' } }).entries.map(e => e.name), ['aa', 'ab', 'b'], 'from a name that is not there: the next ones')
  t.same(ns.listPage('/d', ROOT, { start: { after: 'b' } }).entries.map(e => e.name), ['z', 'é'], 'after without limit: all the rest')
  const end = ns.listPage('/d', ROOT, { limit: 5, start: { after: 'é' } })
  t.same(end, { entries: [] }, 'past the last name: empty, no more')
  const first = ns.listPage('/d', ROOT, { limit: 2 })
  t.equal(first.more, true)
  t.match(first.entries[0], { name: '0', type: 'file', size: 0 }, 'entries carry their stat')
})

t.test('a page of an empty directory, and the errors of list', async t => {
  const { core } = makeCore(t)
  const ns = core.ns
  ns.mkdir('/e', ROOT)
  t.same(ns.listPage('/e', ROOT, { limit: 10 }), { entries: [] })
  ns.create('/f', ROOT)
  t.throws(() => ns.listPage('/f', ROOT, { limit: 10 }), { code: 'ENOTDIR' })
  t.throws(() => ns.listPage('/missing', ROOT, { limit: 10 }), { code: 'ENOENT' })
})

t.test('a page is at most MAX_LIST_LIMIT entries, whatever limit was asked', async t => {
  const { core } = makeCore(t)
  const ns = core.ns
  ns.mkdir('/many', ROOT)
  for (let i = 0; i <= MAX_LIST_LIMIT; i++) ns.create(`/many/f${String(i).padStart(5, '0')}`, ROOT)
  const page = ns.listPage('/many', ROOT, { limit: MAX_LIST_LIMIT * 100 })
  t.equal(page.entries.length, MAX_LIST_LIMIT, 'cut to the cap')
  t.equal(page.more, true, 'and says more follow')
  const rest = ns.listPage('/many', ROOT, { limit: MAX_LIST_LIMIT * 100, start: { after: page.entries[MAX_LIST_LIMIT - 1]!.name } })
  t.same(rest.entries.map(e => e.name), [`f${String(MAX_LIST_LIMIT).padStart(5, '0')}`], 'the next page holds the last one')
  t.equal(rest.more, undefined)
  t.equal(ns.listPage('/many', ROOT, {}).entries.length, MAX_LIST_LIMIT + 1, 'without limit: all of them')
})
