/** One codec for servers and the browser SDK: it lives with the wire contract. */
export { decodeCursor, encodeCursor, type Cursor } from '@danmaku/protocol';
