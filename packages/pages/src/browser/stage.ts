/**
 * The pages draw danmaku with the SDK's renderer (lanes, modes, colours), the same one the
 * drop-in `<danmaku-layer>` uses: see packages/client/src/stage.ts.
 */
export { giftLabel, GIFTS, Stage, styleOf, type DanmakuMode, type StageOptions } from '@danmaku/client/stage';
