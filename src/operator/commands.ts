// `!pingboard …`: the room admins' commands, parsed without side effects.

export type AdminCommand =
  | { readonly kind: 'exclude'; readonly server: string; readonly reason: string }
  | { readonly kind: 'include'; readonly server: string }
  | { readonly kind: 'delete'; readonly pingEventId: string }
  | { readonly kind: 'refreeze'; readonly week: string; readonly reason: string }
  | { readonly kind: 'help' }
  /** Starts with the prefix but is not a command: the text says what is expected. */
  | { readonly kind: 'invalid'; readonly message: string };

export const ADMIN_PREFIX = '!pingboard';

export const ADMIN_USAGE = [
  '!pingboard exclude <server> <reason>: leave a server out of the rankings',
  '!pingboard include <server>: rank it again',
  '!pingboard delete <ping event ID>: delete the samples of one ping',
  '!pingboard refreeze <week, e.g. 2026-W47> <reason>: compute a frozen week again (the old table stays in its history)',
].join('\n');

/** Undefined when the body is not addressed to Pingboard at all. */
export function parseAdminCommand(body: string): AdminCommand | undefined {
  if (body !== ADMIN_PREFIX && !body.startsWith(`${ADMIN_PREFIX} `)) return undefined;
  const [verb = 'help', first, ...rest] = body
    .slice(ADMIN_PREFIX.length)
    .trim()
    .split(/\s+/)
    .filter((w) => w !== '');
  const text = rest.join(' ');
  switch (verb) {
    case 'exclude':
      return first && text
        ? { kind: 'exclude', server: first, reason: text }
        : { kind: 'invalid', message: 'usage: !pingboard exclude <server> <reason>' };
    case 'include':
      return first && !text
        ? { kind: 'include', server: first }
        : { kind: 'invalid', message: 'usage: !pingboard include <server>' };
    case 'delete':
      return first && !text
        ? { kind: 'delete', pingEventId: first }
        : { kind: 'invalid', message: 'usage: !pingboard delete <ping event ID>' };
    case 'refreeze':
      return first && text
        ? { kind: 'refreeze', week: first, reason: text }
        : { kind: 'invalid', message: 'usage: !pingboard refreeze <week> <reason>' };
    case 'help':
      return { kind: 'help' };
    default:
      return { kind: 'invalid', message: `unknown command ${JSON.stringify(verb.slice(0, 40))}; try !pingboard help` };
  }
}
