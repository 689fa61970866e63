import { createContext, useContext } from 'react';

/** `GET /v1/session` (API.md, People). */
export interface Session {
  kind: 'member' | 'operator';
  tenant?: string;
  memberId?: string;
  email?: string;
  permissions: string[];
  csrfToken: string;
}

/** Who is signed in (the pages render only once someone is). */
export const SessionContext = createContext<Session | undefined>(undefined);

/** Whether the signed-in person holds `permission` (the operator holds all). */
export function useCan(): (permission: string) => boolean {
  const session = useContext(SessionContext);
  return (permission) =>
    session !== undefined && (session.kind === 'operator' || session.permissions.includes(permission));
}
