// HTTP caching: a frozen week never changes, so clients and proxies may keep
// it for long; live tables only as long as the server caches them itself.
import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

const FROZEN_MAX_AGE_SECONDS = 30 * 86_400;

export function etagOf(body: string): string {
  return `"${createHash('sha1').update(body).digest('base64url')}"`;
}

/** A body encoded and hashed once, for bodies served many times from a cache. */
export interface EncodedBody {
  readonly bytes: Buffer;
  readonly etag: string;
}

export function encodeBody(text: string): EncodedBody {
  return { bytes: Buffer.from(text, 'utf8'), etag: etagOf(text) };
}

/** Sets ETag and Cache-Control; answers 304 when the client already has this body. */
export function sendCacheable(request: FastifyRequest, reply: FastifyReply, content: string | EncodedBody, frozen: boolean, liveMaxAge: number): FastifyReply {
  // A cached page of hundreds of rows costs more to hash and encode per request than to serve.
  const { bytes: body, etag } = typeof content === 'string' ? { bytes: content, etag: etagOf(content) } : content;
  reply.header('etag', etag);
  reply.header('cache-control', frozen ? `public, max-age=${FROZEN_MAX_AGE_SECONDS}, immutable` : `public, max-age=${liveMaxAge}`);
  const match = request.headers['if-none-match'];
  if (match !== undefined && match.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag)) {
    return reply.code(304).send();
  }
  return reply.send(body);
}
