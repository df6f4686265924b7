/**
 * Time as a dependency (as got's tests inject it): where timing decides what
 * happens (settling, retries, staleness, the journal's timestamps), code reads
 * the time from a Clock it was given, so a test can hold or move time instead
 * of sleeping.
 */
export interface Clock { now(): number }

export const systemClock: Clock = { now: () => Date.now() };
