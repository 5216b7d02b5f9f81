export { LiveStates, LIVE_CHANNEL, liveKey, type LiveState, type LiveStatesOptions } from './states.js';
export { Lives, type LiveRecord, type LiveRecords, type LivesOptions } from './lives.js';
