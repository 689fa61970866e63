/**
 * A hand-written HTTP/1.1 server side for upstreams that bend the protocol (interim responses,
 * replies that are not HTTP): it reads requests off a raw socket (Content-Length bodies, one after
 * another on a kept-alive connection) and writes, for each, the parts `answer` returns, each a
 * separate write a few milliseconds apart (so a separate TLS record or TCP segment).
 */
import type { Socket } from 'node:net';

/** A complete `200 OK` text/plain response with `body`. */
export function finalResponse(body: string): string {
  return `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** Serves requests on `socket` with `answer(path, body)` (see the module comment). */
export function serveRawHttp(socket: Socket, answer: (path: string, body: string) => string[]): void {
  let buffer = Buffer.alloc(0);
  let busy = false;
  const next = async (): Promise<void> => {
    if (busy) return;
    const end = buffer.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = buffer.subarray(0, end).toString('latin1');
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    if (buffer.length < end + 4 + length) return;
    busy = true;
    const body = buffer.subarray(end + 4, end + 4 + length).toString('latin1');
    buffer = buffer.subarray(end + 4 + length);
    for (const part of answer(head.split(' ')[1] ?? '/', body)) {
      if (socket.destroyed) return;
      socket.write(part);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    busy = false;
    await next();
  };
  socket.on('data', (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    void next();
  });
  socket.on('error', () => {});
}
