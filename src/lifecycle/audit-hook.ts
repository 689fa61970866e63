import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuditService } from './audit.js';

/**
 * An `onSend` hook that records `request.audit` (see `AuditNote` in lifecycle/audit.ts) for every
 * successful (2xx or redirect) request that set it, with the actor (`request.principal.actor`:
 * `operator`, `api-key:<id>` or `member:<id>`, a member's e-mail of the moment as
 * `detail.actorEmail`), the source address and the request id. It runs in `onSend`, before the answer leaves, so a client that reads the
 * audit log right after its change finds the entry. A failed audit write is logged as an error and
 * does not turn the (already committed) change into a failure.
 */
export function auditOnSend(audit: AuditService) {
  return async (request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> => {
    const note = request.audit;
    if (!note || reply.statusCode < 200 || reply.statusCode >= 400) return payload;
    const tenantId = note.tenantId ?? (request.params as { tenant?: string } | undefined)?.tenant;
    if (!tenantId) {
      request.log.error({ action: note.action }, 'audit note without a tenant was not recorded');
      return payload;
    }
    const principal = request.principal as typeof request.principal | undefined;
    const email = principal?.kind === 'tenant' ? principal.email : undefined;
    const detail = { ...note.detail, ...(email !== undefined ? { actorEmail: email } : {}) };
    try {
      await audit.record(tenantId, {
        actor: principal?.actor ?? 'anonymous',
        action: note.action,
        objectType: note.objectType,
        objectId: note.objectId,
        sourceAddress: request.ip,
        requestId: String(request.id),
        ...(Object.keys(detail).length > 0 ? { detail } : {}),
      });
    } catch (err) {
      request.log.error({ err, action: note.action, objectId: note.objectId }, 'audit entry not written');
    }
    return payload;
  };
}
