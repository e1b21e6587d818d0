import { createServer, type Socket } from 'node:net';

/** How the stub SMTP server treats the next connections. */
export type SmtpStubMode =
  | 'accept'
  /** 550 5.1.1 to every RCPT TO: a permanent rejection. */
  | 'reject-recipient'
  /** 451 4.3.0 after the message data: a temporary failure. */
  | 'temporary-failure'
  /** 421 4.3.2 instead of the greeting, then hangs up: the server is unavailable for now. */
  | 'unavailable'
  /** Accepts the connection and never greets (the client's timeout must fire). */
  | 'silent';

export interface SmtpStub {
  host: string;
  port: number;
  setMode(mode: SmtpStubMode): void;
  /** Messages whose data the server acknowledged with 250. */
  accepted: number;
  close(): Promise<void>;
}

/**
 * A plain-text SMTP server (RFC 5321 subset: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT; no
 * STARTTLS, no AUTH) whose answers a test controls, for the email suite's failure tests.
 */
export async function startSmtpStub(): Promise<SmtpStub> {
  let mode: SmtpStubMode = 'accept';
  const sockets = new Set<Socket>();
  const state = { accepted: 0 };
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const current = mode;
    if (current === 'silent') return;
    if (current === 'unavailable') {
      socket.end('421 4.3.2 service not available, try again later\r\n');
      return;
    }
    socket.write('220 testkit.smtp.local ESMTP stub\r\n');
    let buffer = '';
    let inData = false;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (;;) {
        if (inData) {
          const end = buffer.indexOf('\r\n.\r\n');
          if (end === -1) return;
          buffer = buffer.slice(end + 5);
          inData = false;
          if (current === 'temporary-failure') socket.write('451 4.3.0 temporary local problem, try again later\r\n');
          else {
            state.accepted++;
            socket.write('250 2.0.0 queued as stub\r\n');
          }
          continue;
        }
        const eol = buffer.indexOf('\r\n');
        if (eol === -1) return;
        const line = buffer.slice(0, eol);
        buffer = buffer.slice(eol + 2);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') socket.write('250-testkit.smtp.local\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n');
        else if (verb === 'HELO') socket.write('250 testkit.smtp.local\r\n');
        else if (verb === 'MAIL') socket.write('250 2.1.0 ok\r\n');
        else if (verb === 'RCPT') socket.write(current === 'reject-recipient' ? '550 5.1.1 no such user here\r\n' : '250 2.1.5 ok\r\n');
        else if (verb === 'DATA') {
          inData = true;
          socket.write('354 end data with <CR><LF>.<CR><LF>\r\n');
        } else if (verb === 'QUIT') socket.end('221 2.0.0 bye\r\n');
        else socket.write('250 2.0.0 ok\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    host: '127.0.0.1',
    port,
    setMode(next) {
      mode = next;
    },
    get accepted() {
      return state.accepted;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A port on 127.0.0.1 where nothing listens (bound and released). */
export async function closedSmtpPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
