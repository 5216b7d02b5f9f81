export * from './packet.js';
export * from './bodies.js';
export { parseAuth, type AuthBody } from './auth.js';
export { setAlias, aliasOf, resolveRoomid, aliasKeys, MAX_ALIAS, type AliasRedis, type SetAliasResult } from './alias.js';
export { readDanmakuFile, DanmakuFileError, type DanmakuFile, type FileDanmaku, type FileMode, type ReadOptions } from './danmaku-file.js';
