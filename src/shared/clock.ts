/** Time as the product sees it; tests inject a fixed or moving clock instead of sleeping. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
