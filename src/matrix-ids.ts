// Matrix identifier grammar (Client-Server API, appendix "Identifier Grammar").
// Server names end up in tables, pages and metric labels, so anything that is
// not a valid server name is refused at the door rather than escaped later.

const PORT = '(?::\\d{1,5})?';
const IPV4 = '\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}';
const IPV6 = '\\[[0-9A-Fa-f:.]{2,45}\\]';
const DNS_NAME = '[A-Za-z0-9.-]{1,255}';
const SERVER_NAME = new RegExp(`^(?:${IPV4}|${IPV6}|${DNS_NAME})${PORT}$`);

export function isValidServerName(name: string): boolean {
  return name.length <= 255 + 6 && SERVER_NAME.test(name);
}

/**
 * The server part of a user ID: everything after the first colon, port kept
 * (`@alice:example.org:8448` → `example.org:8448`), as the echo bot's `from`.
 * Returns undefined when the ID is not `@localpart:valid-server-name`.
 */
export function serverOfUserId(userId: string): string | undefined {
  if (!userId.startsWith('@')) return undefined;
  const colon = userId.indexOf(':');
  if (colon < 2) return undefined;
  const server = userId.slice(colon + 1);
  return isValidServerName(server) ? server : undefined;
}

const MAX_ID_LENGTH = 255;
const OPAQUE = /^[\x21-\x7e]+$/;

/** Room IDs: `!opaque:server`, or `!opaque` alone from room version 12 on. */
export function isValidRoomId(id: string): boolean {
  return id.length >= 2 && id.length <= MAX_ID_LENGTH && id.startsWith('!') && OPAQUE.test(id);
}

export function isValidRoomAlias(alias: string): boolean {
  if (alias.length > MAX_ID_LENGTH || !alias.startsWith('#') || !OPAQUE.test(alias)) return false;
  const colon = alias.indexOf(':');
  return colon > 1 && isValidServerName(alias.slice(colon + 1));
}

export function isValidEventId(id: string): boolean {
  return id.length >= 2 && id.length <= MAX_ID_LENGTH && id.startsWith('$') && OPAQUE.test(id);
}

export function isValidUserId(id: string): boolean {
  return id.length <= MAX_ID_LENGTH && OPAQUE.test(id) && serverOfUserId(id) !== undefined;
}
