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

export class NotFoundError extends Error {
  override name = 'NotFoundError';
}
