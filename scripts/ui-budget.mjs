// Fails the build when the JavaScript of the UI's first load (the entry chunk and every chunk it
// imports statically, per Vite's manifest) is over budget, gzipped: issue 14 allows 150 KB.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';

export const BUDGET_BYTES = 150 * 1024;

/** Gzipped bytes of every JS file fetched on first load of the built UI in `dir` (dist/ui). */
export function firstLoadJsBytes(dir) {
  const manifest = JSON.parse(readFileSync(join(dir, '.vite/manifest.json'), 'utf8'));
  const seen = new Set();
  const visit = (key) => {
    if (seen.has(key)) return;
    seen.add(key);
    for (const child of manifest[key].imports ?? []) visit(child);
  };
  for (const [key, chunk] of Object.entries(manifest)) if (chunk.isEntry) visit(key);
  let bytes = 0;
  for (const key of seen) {
    const file = manifest[key].file;
    if (file.endsWith('.js')) bytes += gzipSync(readFileSync(join(dir, file)), { level: 9 }).length;
  }
  return bytes;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = resolve(import.meta.dirname, '../dist/ui');
  const bytes = firstLoadJsBytes(dir);
  const kb = (bytes / 1024).toFixed(1);
  if (bytes > BUDGET_BYTES) {
    console.error(`UI first-load JavaScript: ${kb} KB gzipped, over the ${BUDGET_BYTES / 1024} KB budget`);
    process.exit(1);
  }
  console.log(`UI first-load JavaScript: ${kb} KB gzipped (budget ${BUDGET_BYTES / 1024} KB)`);
}
