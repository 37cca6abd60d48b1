// HTTP caching: a frozen week never changes, so clients and proxies may keep
// it for long; live tables only as long as the server caches them itself.
import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

const FROZEN_MAX_AGE_SECONDS = 30 * 86_400;

export function etagOf(body: string): string {
  return `"${createHash('sha1').update(body).digest('base64url')}"`;
}

/** Sets ETag and Cache-Control; answers 304 when the client already has this body. */
export function sendCacheable(request: FastifyRequest, reply: FastifyReply, body: string, frozen: boolean, liveMaxAge: number): FastifyReply {
  const etag = etagOf(body);
  reply.header('etag', etag);
  reply.header('cache-control', frozen ? `public, max-age=${FROZEN_MAX_AGE_SECONDS}, immutable` : `public, max-age=${liveMaxAge}`);
  const match = request.headers['if-none-match'];
  if (match !== undefined && match.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag)) {
    return reply.code(304).send();
  }
  return reply.send(body);
}
