import { MAX_GEAR, type Gear } from '@danmaku/switches';

export interface GearOptions {
  /** Delay (ms, now - ts) at or above which a stream climbs one gear. */
  upMs: number;
  /** Delay at or below which a stream counts as calm. */
  downMs: number;
  /** Least time between two changes of one stream: a change must take effect before the next. */
  holdMs: number;
  /** Calm or idle this long: one gear down. */
  coolMs: number;
  /** Lua calls of one stream in flight in gears 3 and 4. */
  inFlight: number;
}

export const DEFAULT_GEAR_OPTIONS: GearOptions = { upMs: 500, downMs: 100, holdMs: 2000, coolMs: 10_000, inFlight: 4 };

interface StreamGear {
  gear: Gear;
  changedAt: number;
  /** Since when the delay has stayed at or below downMs; null while it is not calm. */
  calmSince: number | null;
  lastSeen: number;
}

/**
 * Per-(room, type) gear with hysteresis: climb one gear while the delay stays high (at most one
 * step per holdMs), come down one gear after coolMs of calm or silence. The band between downMs
 * and upMs changes nothing, so a stream hovering near one threshold does not flap.
 */
export class GearBox {
  private readonly streams = new Map<string, StreamGear>();

  constructor(
    private readonly options: GearOptions,
    private readonly onChange: (key: string, gear: Gear, from: Gear) => void,
  ) {}

  gear(key: string): Gear {
    return this.streams.get(key)?.gear ?? 1;
  }

  /** Records one batch's delay and returns the gear to write it in. */
  observe(key: string, delayMs: number, now = Date.now()): Gear {
    let state = this.streams.get(key);
    if (!state) {
      // Streams only get state once they are worth watching; a calm room costs nothing.
      if (delayMs < this.options.upMs) return 1;
      state = { gear: 1, changedAt: 0, calmSince: null, lastSeen: now };
      this.streams.set(key, state);
    }
    state.lastSeen = now;
    const { upMs, downMs, holdMs, coolMs } = this.options;
    if (delayMs >= upMs) {
      state.calmSince = null;
      if (state.gear < MAX_GEAR && now - state.changedAt >= holdMs) this.change(key, state, (state.gear + 1) as Gear, now);
    } else if (delayMs <= downMs) {
      state.calmSince ??= now;
      if (state.gear > 1 && now - state.calmSince >= coolMs && now - state.changedAt >= holdMs) {
        this.change(key, state, (state.gear - 1) as Gear, now);
        state.calmSince = now;
      }
    } else {
      state.calmSince = null;
    }
    return state.gear;
  }

  /** Idle streams come down too (no batch means no observation); called about once a second. */
  sweep(now = Date.now()): void {
    for (const [key, state] of this.streams) {
      if (now - state.lastSeen < this.options.coolMs) continue;
      if (state.gear === 1) {
        this.streams.delete(key);
      } else if (now - state.changedAt >= this.options.holdMs) {
        this.change(key, state, (state.gear - 1) as Gear, now);
        state.lastSeen = now;
      }
    }
  }

  /** Streams above gear 1 (republished so a lost write or a restarted front converges). */
  hot(): [string, Gear][] {
    const out: [string, Gear][] = [];
    for (const [key, state] of this.streams) if (state.gear > 1) out.push([key, state.gear]);
    return out;
  }

  countByGear(): Record<Gear, number> {
    const counts: Record<Gear, number> = { 1: 0, 2: 0, 3: 0, 4: 0 };
    for (const state of this.streams.values()) counts[state.gear]++;
    return counts;
  }

  private change(key: string, state: StreamGear, gear: Gear, now: number): void {
    const from = state.gear;
    state.gear = gear;
    state.changedAt = now;
    this.onChange(key, gear, from);
  }
}
