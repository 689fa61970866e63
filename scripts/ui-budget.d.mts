/** Gzipped bytes of every JS file fetched on first load of the built UI in `dir` (dist/ui). */
export function firstLoadJsBytes(dir: string): number;
/** The budget: 150 KB. */
export const BUDGET_BYTES: number;
