import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { Collection, problemResponses, TenantParams } from '../http/schemas.js';
import { PageQuery, pageRequest } from '../shared/paging.js';
import { connectionCreated, connectionDeleted, connectionUpdated } from './audit.js';
import { ConnectionParams, CreateConnectionBody, PatchConnectionBody } from './schemas.js';
import type { ConnectionService } from './service.js';

const errors = {
  ...problemResponses,
  403: Type.Ref('Problem'),
  409: Type.Ref('Problem'),
  413: Type.Ref('Problem'),
  422: Type.Ref('Problem'),
};

/**
 * `/v1/tenants/{tenant}/connections`: create, list, get, patch, delete. Registered in the tenant
 * scope (http/tenant-scope.ts), which authorises the tenant and the permission each route declares
 * (`connections:read`, `connections:write`).
 */
export const connectionRoutes: FastifyPluginAsyncTypebox<{ connections: ConnectionService }> = async (
  app,
  { connections },
) => {
  app.post(
    '/v1/tenants/:tenant/connections',
    {
      config: { permission: 'connections:write' },
      schema: {
        tags: ['connections'],
        summary: 'Save an external API request: base URL, auth, client-certificate switch',
        params: TenantParams,
        body: CreateConnectionBody,
        response: { 201: Type.Ref('Connection'), ...errors },
      },
    },
    async (request, reply) => {
      const view = await connections.create(request.params.tenant, request.body);
      request.audit = connectionCreated(view);
      return reply.code(201).send(view);
    },
  );

  app.get(
    '/v1/tenants/:tenant/connections',
    {
      config: { permission: 'connections:read' },
      schema: {
        tags: ['connections'],
        summary: 'List connections, oldest first; page with limit and cursor',
        params: TenantParams,
        querystring: PageQuery,
        response: { 200: Collection(Type.Ref('Connection')), ...problemResponses },
      },
    },
    async (request) => connections.list(request.params.tenant, pageRequest(request.query)),
  );

  app.get(
    '/v1/tenants/:tenant/connections/:id',
    {
      config: { permission: 'connections:read' },
      schema: {
        tags: ['connections'],
        params: ConnectionParams,
        response: { 200: Type.Ref('Connection'), ...problemResponses },
      },
    },
    async (request) => connections.get(request.params.tenant, request.params.id),
  );

  app.patch(
    '/v1/tenants/:tenant/connections/:id',
    {
      config: { permission: 'connections:write' },
      schema: {
        tags: ['connections'],
        summary: 'Change any field; a secret is replaced only when sent',
        params: ConnectionParams,
        body: PatchConnectionBody,
        response: { 200: Type.Ref('Connection'), ...errors },
      },
    },
    async (request) => {
      const view = await connections.update(request.params.tenant, request.params.id, request.body);
      request.audit = connectionUpdated(view, Object.keys(request.body));
      return view;
    },
  );

  app.delete(
    '/v1/tenants/:tenant/connections/:id',
    {
      config: { permission: 'connections:write' },
      schema: {
        tags: ['connections'],
        summary: 'Delete the connection and its sealed secret',
        params: ConnectionParams,
        response: { 204: Type.Null(), ...problemResponses },
      },
    },
    async (request, reply) => {
      await connections.remove(request.params.tenant, request.params.id);
      request.audit = connectionDeleted(request.params.id);
      return reply.code(204).send(null);
    },
  );
};
