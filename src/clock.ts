/** Injectable time, so tests can cross deletion windows, rotation periods and import expiry. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** A clock that reads a fixed instant; `set`/`advance` move it. */
export class ManualClock implements Clock {
  private t: number;
  constructor(start: Date | number = Date.now()) {
    this.t = typeof start === 'number' ? start : start.getTime();
  }
  now(): Date {
    return new Date(this.t);
  }
  set(d: Date | string | number): void {
    this.t = new Date(d).getTime();
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

export const DAY_MS = 86_400_000;

/** `KMSVOL_NOW` (an ISO date) sets "now" for the CLI; without it the system clock is used. */
export function clockFromEnv(env: NodeJS.ProcessEnv = process.env): Clock {
  const v = env.KMSVOL_NOW;
  if (!v) return systemClock;
  const t = Date.parse(v);
  if (Number.isNaN(t)) {
    throw new Error(`KMSVOL_NOW is not an ISO date: ${JSON.stringify(v)}. Use e.g. KMSVOL_NOW=2030-01-01T00:00:00Z.`);
  }
  return new ManualClock(t);
}
