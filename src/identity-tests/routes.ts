import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { AppError } from '../errors/app-error.js';
import { problemResponses, TenantParams } from '../http/schemas.js';
import {
  type IdentityJsonBody,
  jsonUploadBodyLimit,
  type ParsedUpload,
  readUpload,
  zeroUpload,
} from '../identities/upload.js';
import { IdentityTestBody, IdentityTestReportSchema } from './schemas.js';
import type { IdentityTester, IdentityTestInput } from './service.js';

export interface IdentityTestRouteOptions {
  tester: IdentityTester;
  maxUploadBytes: number;
}

/**
 * `POST /v1/tenants/{tenant}/identity-tests`: try a certificate against a live endpoint. Stores
 * nothing, so it sets no audit note (the audit walk test knows it as the one mutating-looking route
 * that changes nothing).
 */
export const identityTestRoutes: FastifyPluginAsyncTypebox<IdentityTestRouteOptions> = async (
  app,
  options,
) => {
  const { tester, maxUploadBytes } = options;
  app.addSchema(IdentityTestReportSchema);

  app.post(
    '/v1/tenants/:tenant/identity-tests',
    {
      config: { permission: 'identities:write' },
      bodyLimit: jsonUploadBodyLimit(maxUploadBytes),
      attachValidation: true,
      schema: {
        tags: ['lifecycle'],
        summary: 'Test a certificate (upload or stored identity) against a URL; stores nothing',
        description:
          'Connects to url through the forward SSRF guard, presents the certificate, GETs the URL and reports ' +
          'the parse result, handshake, the CA names the server asked for, the server chain, the HTTP status, ' +
          'the first 1 KiB of the body, timings and a verdict.',
        consumes: ['application/json', 'multipart/form-data'],
        params: TenantParams,
        body: IdentityTestBody,
        response: {
          200: Type.Ref('IdentityTestReport'),
          ...problemResponses,
          403: Type.Ref('Problem'),
          413: Type.Ref('Problem'),
          422: Type.Ref('Problem'),
          429: Type.Ref('Problem'),
        },
      },
    },
    async (request) => {
      if (request.validationError && !request.isMultipart())
        throw new AppError('bad_request', request.validationError.message);
      const parsed = await readUpload(request, maxUploadBytes);
      try {
        return await tester.test(request.params.tenant, testInput(request, parsed));
      } finally {
        zeroUpload(parsed.upload);
      }
    },
  );
};

/** The tester's input from the JSON body or the multipart fields, next to the upload itself. */
function testInput(request: FastifyRequest, parsed: ParsedUpload): IdentityTestInput {
  const json = request.isMultipart()
    ? undefined
    : (request.body as IdentityJsonBody & {
        url?: string;
        identityId?: string;
        trustAnchorsPem?: string;
        timeoutMs?: number;
      });
  const fields = parsed.fields;
  const url = json?.url ?? fields.url;
  if (url === undefined) throw new AppError('bad_request', 'url is required.');
  const identityId = json?.identityId ?? fields.identityId;
  const trustAnchorsPem = json?.trustAnchorsPem ?? fields.trustAnchorsPem;
  const timeoutRaw =
    json?.timeoutMs ?? (fields.timeoutMs !== undefined ? Number(fields.timeoutMs) : undefined);
  if (timeoutRaw !== undefined && (!Number.isInteger(timeoutRaw) || timeoutRaw < 100))
    throw new AppError('bad_request', 'timeoutMs must be an integer of at least 100.');
  return {
    url,
    upload: parsed.upload,
    ...(identityId !== undefined ? { identityId } : {}),
    ...(trustAnchorsPem !== undefined && trustAnchorsPem !== '' ? { trustAnchorsPem } : {}),
    ...(timeoutRaw !== undefined ? { timeoutMs: timeoutRaw } : {}),
  };
}
