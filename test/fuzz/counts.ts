/** Bounded counts in the suite; `npm run soak -- fuzz` (KMSVOL_FUZZ_FULL=1) runs the full counts. */
export const FULL = process.env.KMSVOL_FUZZ_FULL === '1';
export const runs = (ci: number, full: number): number => (FULL ? full : ci);
/** A fixed seed in the suite (reproducible); the soak draws new ones and prints them. */
export const SEED = process.env.KMSVOL_FUZZ_SEED ? Number(process.env.KMSVOL_FUZZ_SEED) : FULL ? Date.now() % 2 ** 31 : 13;
