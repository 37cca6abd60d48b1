// The log as a person reads it on a terminal, and as programs read it
// everywhere else: the same pino records, written by the stream's kind.
import t from 'tap';
import { createStreamLogger, formatLogLine } from '../src/log.ts';
import { capturedStream as stream } from './helpers/streams.ts';

t.test("on a terminal: one human line per record, the error's stack below it", async (t) => {
  const out = stream(true);
  const log = createStreamLogger('info', out.stream);
  log.info(
    { migration: '2026-11-22T00.00-samples', count: 3, rooms: ['!a:x.org'] },
    'applying migration 2026-11-22T00.00-samples',
  );
  log.debug('not at info');
  log.error({ err: new Error('boom') }, 'request failed');
  await new Promise((resolve) => setImmediate(resolve));
  const [first, second, ...stack] = out.text().split('\n');
  t.match(
    first,
    /^\d\d:\d\d:\d\d\.\d{3}Z INFO {2}applying migration 2026-11-22T00\.00-samples count=3 rooms=\["!a:x\.org"\]$/,
    'time, level, message, the fields the message does not say',
  );
  t.notMatch(first, /pid=|hostname=/);
  t.match(second, /^\d\d:\d\d:\d\d\.\d{3}Z ERROR request failed$/);
  t.match(stack[0], /^ {4}Error: boom$/);
  t.match(stack[1], /^ {4}at /);
});

t.test('elsewhere (a pipe, a file, a collector): JSON lines, as before', async (t) => {
  const out = stream(false);
  const log = createStreamLogger('info', out.stream);
  log.info({ migration: 'm1' }, 'applying migration m1');
  log.warn({ account: { token: 'secret' } }, 'with a secret');
  await new Promise((resolve) => setImmediate(resolve));
  const lines = out
    .text()
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  t.match(lines, [
    { level: 30, msg: 'applying migration m1', migration: 'm1' },
    { level: 40, account: { token: '[redacted]' } },
  ]);
});

t.test('nothing reaches a terminal raw: escape sequences and bidi controls are shown escaped', async (t) => {
  const hostile = 'room \u001b]0;owned\u0007 \u001b[2J \u202eevil \u0085';
  const line = formatLogLine(
    JSON.stringify({
      level: 40,
      time: 0,
      msg: hostile,
      room: hostile,
      err: { message: hostile, stack: `Error: ${hostile}\n    at x` },
    }),
  );
  t.notMatch(
    line.slice(0, -1),
    /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e]/,
    'no control character but the line breaks',
  );
  t.match(line, /^00:00:00\.000Z WARN {2}room \\u001b\]0;owned\\u0007 \\u001b\[2J \\u202eevil \\u0085/);
  t.equal(line.split('\n').length, 4, "the record line, the stack's two lines, the end");
  t.equal(
    formatLogLine('not json \u001b[2J\n'),
    'not json \\u001b[2J\n',
    'a line that is not a record is shown escaped',
  );
});
