import { Writable } from 'node:stream';

/**
 * A stream that says it is (or is not) a terminal, and keeps what is written
 * to it as it is written: `text()` right after a write holds that write.
 */
export function capturedStream(isTTY: boolean): { stream: NodeJS.WriteStream; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return { stream: Object.assign(stream, { isTTY }) as unknown as NodeJS.WriteStream, text: () => text };
}
