export { LaneAllocator, layoutLanes, collide, leftAt, textWidth, type LaneItem, type LaneMode, type LaneScreen, type Placement } from './lanes.js';
export { AssWriter, ASS_DEFAULTS, assColor, assDialogue, assHeader, assText, assTime, laneHeightFor, type AssComment, type AssOptions } from './ass.js';
