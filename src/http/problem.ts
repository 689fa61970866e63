import type { ServerResponse } from 'node:http';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, problemOf, toAppError } from '../errors/app-error.js';

/**
 * Maps Fastify's and its plugins' own errors (validation, body limits, content types, multipart
 * limits) to catalogue codes, so every error leaves as the same problem+json shape.
 */
export function normaliseError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const e = err as Partial<FastifyError> & { code?: string };
  if (e.validation) return new AppError('bad_request', e.message ?? 'The request does not match the schema.');
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
    case 'FST_REQ_FILE_TOO_LARGE':
    case 'FST_FILES_LIMIT':
    case 'FST_PARTS_LIMIT':
    case 'FST_FIELDS_LIMIT':
      return new AppError('payload_too_large', 'The upload is larger than the configured limit.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return new AppError('unsupported_media_type', 'Send application/json or multipart/form-data.');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AppError('bad_request', 'The body is not valid JSON.');
  }
  if (typeof e.statusCode === 'number' && e.statusCode === 413) return new AppError('payload_too_large');
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new AppError('bad_request', 'The request could not be read.', { cause: err });
  }
  return toAppError(err);
}

/** Sends an RFC 9457 problem (with `Retry-After` when the error has one); on the forward path also sets `Twoway-Error`. */
export function sendProblem(reply: FastifyReply, err: AppError, forwardPath = false): FastifyReply {
  if (forwardPath) reply.header('twoway-error', err.code);
  if (err.retryAfterSeconds !== undefined) reply.header('retry-after', String(err.retryAfterSeconds));
  return reply.code(err.status).type('application/problem+json').send(problemOf(err));
}

/** The Fastify error handler: logs 5xx with their cause, answers problem+json. */
export function errorHandler(
  this: unknown,
  error: unknown,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  const err = normaliseError(error);
  if (err.status >= 500) request.log.error({ err: err.cause ?? err, code: err.code }, 'request failed');
  else request.log.info({ code: err.code, status: err.status }, 'request refused');
  sendProblem(reply, err, (request.routeOptions.url ?? request.url).startsWith('/v1/runtime/forward'));
}

/**
 * Writes an RFC 9457 problem with `Twoway-Error` on a raw Node response (the forward and edge hot
 * paths, which bypass Fastify's reply). Once the response has started, it can only be cut: the
 * socket is destroyed. `close` answers with `Connection: close` (a request body was left unread).
 */
export function writeRawProblem(
  res: ServerResponse,
  err: AppError,
  options: { close?: boolean; headers?: Record<string, string> } = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(problemOf(err));
  if (options.close) res.shouldKeepAlive = false;
  res.writeHead(err.status, {
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(body),
    'twoway-error': err.code,
    ...options.headers,
  });
  res.end(body);
}
