// The answer to an error the client caused: one for the JSON routes (app.ts)
// and the HTML pages alike, so both say the same thing about the same request.
import { STATUS_CODES } from 'node:http';
import type { FastifyError } from 'fastify';
import { InputError, NotFoundError } from '../errors.ts';
import { PRINTABLE } from './schemas.ts';

/** What a failed validation says, in words for whoever sent the request. */
function validationMessage(err: FastifyError): string {
  const first = err.validation?.[0];
  if (first?.keyword === 'pattern' && (first.params as { pattern?: string }).pattern === PRINTABLE)
    return 'must not contain control characters';
  if (first?.keyword === 'additionalProperties')
    return err.validationContext === 'body' ? 'not a field of this request' : 'not a parameter of this route';
  return err.message.replace(/^(querystring|params|body)\/\w+ /, '');
}

/** The query/path parameter a validation error is about. */
function parameterOf(err: FastifyError): string {
  const first = err.validation?.[0];
  const { missingProperty, additionalProperty } = (first?.params ?? {}) as {
    missingProperty?: string;
    additionalProperty?: string;
  };
  if (missingProperty) return missingProperty;
  if (additionalProperty) return additionalProperty;
  const path = first?.instancePath.replace(/^\//, '') ?? '';
  return path || err.validationContext || 'request';
}

export interface ClientError {
  readonly statusCode: number;
  readonly body: { readonly error: string; readonly parameter?: string; readonly message: string };
}

/** The answer to an error the client caused (4xx), or undefined for one of the service's own. */
export function clientErrorOf(err: FastifyError): ClientError | undefined {
  if (err.validation) {
    const parameter = parameterOf(err);
    return {
      statusCode: 400,
      body: { error: 'Bad Request', parameter, message: `${parameter}: ${validationMessage(err)}` },
    };
  }
  if (err instanceof InputError)
    return { statusCode: 400, body: { error: 'Bad Request', parameter: err.parameter, message: err.message } };
  if (err instanceof NotFoundError) return { statusCode: 404, body: { error: 'Not Found', message: err.message } };
  // Before the database's errors: a client that hangs up mid-upload is an ECONNRESET too, which fastify marks 400.
  if (err.statusCode !== undefined && err.statusCode < 500) {
    return {
      statusCode: err.statusCode,
      body: { error: STATUS_CODES[err.statusCode] ?? 'Bad Request', message: err.message },
    };
  }
  return undefined;
}
