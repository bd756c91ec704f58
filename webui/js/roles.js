// The role -> permission table, the same as the agent's common/http/roles.cpp, so the console
// never offers what the caller's role cannot do. The agent still checks every request.
const GRANTS = [
  ['admin', '*'],
  ['operator', '*:read'],
  ['operator', 'model:*'],
  ['operator', 'runtime:*'],
  ['operator', 'alert:*'],
  ['auditor', '*:read'],
  ['auditor', 'audit:read'],
  ['viewer', '*:read'],
];

export const ROLES = ['admin', 'operator', 'auditor', 'viewer'];

function matches(pattern, permission) {
  if (pattern === '*') return true;
  const colon = permission.indexOf(':');
  if (colon < 0) return pattern === permission;
  const resource = permission.slice(0, colon);
  const action = permission.slice(colon + 1);
  if (pattern === '*:read') return action === 'read' && resource !== 'audit';
  if (pattern.endsWith(':*')) return pattern.slice(0, -2) === resource;
  return pattern === permission;
}

export function roleAllows(role, permission) {
  if (role === 'viewer' && permission.startsWith('key:')) return false;
  return GRANTS.some(([r, pattern]) => r === role && matches(pattern, permission));
}
