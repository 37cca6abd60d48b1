// Errors that carry what the caller did wrong, so HTTP answers 400/404 and the
// CLI prints a one-line message instead of a stack trace.

/** A request parameter (HTTP query/path or CLI option) has a value that cannot be served. */
export class InputError extends Error {
  override name = 'InputError';
  readonly parameter: string;
  constructor(parameter: string, message: string) {
    super(`${parameter}: ${message}`);
    this.parameter = parameter;
  }
}

/** A value as an error message shows it: quoted and escaped, so it stays on one line, and cut short when long. */
export function quoteValue(value: string): string {
  return JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}…` : value);
}

export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

/**
 * The service cannot start with a setting as it is: the database it names
 * does not exist or cannot be reached, the port is taken, the data
 * directory cannot be made. The message names the setting and the cause.
 */
export class StartupError extends Error {
  override name = 'StartupError';
  readonly setting: string;
  constructor(setting: string, message: string, options?: ErrorOptions) {
    super(`${setting}: ${message}`, options);
    this.setting = setting;
  }
}

/** The errors an error wraps, outermost first: its `cause`s, and the attempts of an AggregateError (one per address of a host). */
export function errorChain(err: unknown): unknown[] {
  const chain: unknown[] = [];
  const visit = (e: unknown) => {
    if (e === undefined || e === null || chain.includes(e) || chain.length > 20) return;
    chain.push(e);
    if (e instanceof AggregateError) e.errors.forEach(visit);
    visit((e as { cause?: unknown }).cause);
  };
  visit(err);
  return chain;
}

/**
 * An error's message with its causes', each said once: fetch reports a
 * refused connection as "fetch failed", and the matrix SDK wraps that as
 * "fetch failed: fetch failed"; the cause says "connect ECONNREFUSED
 * 127.0.0.1:8008", which names the host and what went wrong.
 */
export function messageWithCauses(err: unknown): string {
  const parts: string[] = [];
  for (const e of errorChain(err)) {
    const message = e instanceof Error ? e.message : String(e);
    for (const part of message.split(': ')) if (part !== '' && !parts.includes(part)) parts.push(part);
  }
  return parts.join(': ') || String(err);
}
