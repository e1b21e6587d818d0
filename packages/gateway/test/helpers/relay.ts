import { once } from 'node:events';
import net from 'node:net';

/**
 * A TCP relay in front of a real backend (the shared Redis) that can be taken down and brought
 * back on the same port: the backend "goes away" for the client exactly as a crashed server
 * would (connections reset, new ones refused), without touching the server others use.
 */
export async function tcpRelay(target: { host: string; port: number }) {
  const sockets = new Set<net.Socket>();
  /** While frozen, bytes are held in both directions: a hung server (SIGSTOP), not a dead one. */
  let frozen = false;
  const hold = new Set<net.Socket>();
  const serve = () =>
    net.createServer((client) => {
      if (frozen) {
        // Accepted and never answered, like a stopped server's kernel backlog.
        hold.add(client);
        client.on('error', () => {});
        client.on('close', () => hold.delete(client));
        return;
      }
      const upstream = net.connect(target.port, target.host);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => {
          sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
  let server = serve();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  let up = true;
  const down = async () => {
    if (!up) return;
    up = false;
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    down,
    /** Stops relaying without closing anything (a frozen server); `thaw()` resumes. */
    freeze() {
      frozen = true;
      for (const s of sockets) s.pause();
    },
    thaw() {
      frozen = false;
      for (const s of sockets) s.resume();
      for (const s of hold) s.destroy();
    },
    async up() {
      if (up) return;
      server = serve();
      server.listen(port, '127.0.0.1');
      await once(server, 'listening');
      up = true;
    },
    close: async () => {
      for (const s of hold) s.destroy();
      await down();
    },
  };
}
