import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { AppError } from '../errors/app-error.js';
import { sendProblem } from './problem.js';

/** Where the built web UI lives and who may frame it. */
export interface UiOptions {
  /** Folder holding `index.html` and `assets/` (Vite's output, dist/ui). */
  root: string;
  /** CSP `frame-ancestors` sources (TWOWAY_UI_FRAME_ANCESTORS), `'none'` by default. */
  frameAncestors: string;
}

/**
 * The Content-Security-Policy of every `/ui/` answer: scripts, styles and API calls from this origin
 * only, no inline script (Vite emits none), no plugins, no `<base>` rewriting; `frame-ancestors`
 * is the one part a platform may widen, to embed the portal (CSP Level 3 §6.4.2).
 */
export function uiContentSecurityPolicy(frameAncestors: string): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    `frame-ancestors ${frameAncestors}`,
  ].join('; ');
}

/** Hashed file names (`assets/index-BFz1x2kQ.js`) never change content: a year, immutable. */
const IMMUTABLE = 'public, max-age=31536000, immutable';

/**
 * Serves the web UI at `/ui/` (`/ui` redirects there). `assets/` carries content hashes in its names
 * and is cached for a year; `index.html` is revalidated on every load so a new build is picked up.
 * Without a build (tests run from src/), `/ui/` answers `404 not_found` saying so.
 */
export async function uiRoutes(app: FastifyInstance, options: UiOptions): Promise<void> {
  const csp = uiContentSecurityPolicy(options.frameAncestors);
  const assets = join(options.root, 'assets');
  app.addHook('onSend', async (_request, reply) => {
    reply.header('content-security-policy', csp);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    if (options.frameAncestors === "'none'") reply.header('x-frame-options', 'DENY');
  });
  app.get('/ui', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/ui/', 301));
  if (!existsSync(join(options.root, 'index.html'))) {
    app.get('/ui/*', { schema: { hide: true } }, async (_request, reply) =>
      sendProblem(reply, new AppError('not_found', 'The web UI is not built (run npm run build).')),
    );
    return;
  }
  await app.register(fastifyStatic, {
    root: options.root,
    prefix: '/ui/',
    index: ['index.html'],
    cacheControl: false,
    etag: true,
    lastModified: true,
    schemaHide: true,
    setHeaders(res, path) {
      res.setHeader('cache-control', path.startsWith(assets) ? IMMUTABLE : 'no-cache');
    },
  });
}
