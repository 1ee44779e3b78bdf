// Public entry point of the client library (the CLI and the FUSE adapter import this).
export { HissClient, createClient } from './hiss-client.js'
export type { CreateClientOptions, OpenWriteOptions } from './hiss-client.js'
export type { HissFs, WriteSession, Identity, PutOptions, ReadOptions } from './types.js'
export type { BlockReadOptions } from './block-reader.js'
export type { DuReply, InodeTarget } from './nameserver-client.js'
export { processIdentity } from './identity.js'
export { RETRIABLE_CODES } from './retry.js'
