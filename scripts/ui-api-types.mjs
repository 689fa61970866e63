// Regenerates ui/src/api/schema.d.ts from Twoway's own OpenAPI document (GET /docs/openapi.json of a
// freshly built `twoway serve` on a temporary data folder), so the UI's calls are checked against the
// API it is served with. Run after changing routes: `npm run ui:api-types` (needs network for npx:
// openapi-typescript 7 wants TypeScript 5's compiler API, which TypeScript 7 no longer ships).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const port = await new Promise((done) => {
  const server = createServer().listen(0, '127.0.0.1', () => {
    const { port } = server.address();
    server.close(() => done(port));
  });
});
const dataDir = mkdtempSync(join(tmpdir(), 'twoway-openapi-'));
const child = spawn('node', [join(root, 'dist/cli/index.js'), 'serve'], {
  env: {
    ...process.env,
    TWOWAY_HTTP_PORT: String(port),
    TWOWAY_EDGE_PORT: '0',
    TWOWAY_DATA_DIR: dataDir,
    TWOWAY_LOG_LEVEL: 'warn',
  },
  stdio: ['ignore', 'ignore', 'inherit'],
});
try {
  let document;
  for (let attempt = 0; attempt < 100 && document === undefined; attempt++) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/docs/openapi.json`);
      if (response.ok) document = await response.text();
    } catch {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  if (document === undefined) throw new Error('twoway serve did not answer /docs/openapi.json');
  const input = join(dataDir, 'openapi.json');
  writeFileSync(input, document);
  const output = join(root, 'ui/src/api/schema.d.ts');
  execFileSync(
    'npx',
    [
      '-y',
      '-p',
      'openapi-typescript@7.13.0',
      '-p',
      'typescript@5.9.3',
      'openapi-typescript',
      input,
      '-o',
      output,
    ],
    { stdio: 'inherit' },
  );
} finally {
  child.kill('SIGTERM');
  rmSync(dataDir, { recursive: true, force: true });
}
