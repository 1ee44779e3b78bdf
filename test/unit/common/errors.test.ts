import t from 'tap'
import { ERROR_TABLE, HissError, toNegativeErrno, fromNodeError, isErrorCode } from '../../../src/common/errors.js'

t.test('every code has an HTTP status, an errno and a message', async t => {
  for (const [code, spec] of Object.entries(ERROR_TABLE)) {
    t.ok(spec.http >= 400 && spec.http < 600, `${code} http ${spec.http}`)
    t.ok(spec.errno > 0, `${code} errno`)
    t.ok(spec.message.length > 0, `${code} message`)
  }
})

t.test('wire round trip keeps the code', async t => {
  const e = HissError.ENOENT('/a/b')
  const back = HissError.fromBody(JSON.parse(JSON.stringify(e.toJSON())))
  t.equal(back.code, 'ENOENT')
  t.match(back.message, /no such file/)
  t.equal(back.http, 404)
  t.equal(toNegativeErrno(back), -2)
  t.equal(HissError.fromBody({ nonsense: 1 }, 502).code, 'EIO')
  t.notOk(isErrorCode('toString'))
})

t.test('node fs errors keep their meaning', async t => {
  const err = Object.assign(new Error('no space'), { code: 'ENOSPC' })
  t.equal(fromNodeError(err).code, 'ENOSPC')
  t.equal(fromNodeError(new Error('weird')).code, 'EIO')
})

