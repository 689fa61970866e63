import { createContext, useContext } from 'react';

import type { paths } from './api/schema';

/** `GET /v1/session` (API.md, People): who, which permissions, the CSRF token. */
export type Session = paths['/v1/session']['get']['responses'][200]['content']['application/json'];

/** Who is signed in (the pages render only once someone is). */
export const SessionContext = createContext<Session | undefined>(undefined);

/** Whether the signed-in person holds `permission` (the operator holds all). */
export function useCan(): (permission: Session['permissions'][number]) => boolean {
  const session = useContext(SessionContext);
  return (permission) =>
    session !== undefined && (session.kind === 'operator' || session.permissions.includes(permission));
}
