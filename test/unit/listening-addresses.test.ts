import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { listeningAddresses, parseListeningSockets } from '../../src/cli/listening-addresses.js';

const HEADER =
  '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';

describe('listening addresses (/proc/PID/net/tcp)', () => {
  it('reads the listening sockets by inode, unspecified hosts as loopback, and skips connections', () => {
    const text = `${HEADER}   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1141 1 000000001be281d9 100 0 0 10 0
   1: 0100007F:5DC0 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 2222 1 000000006059d053 100 0 0 10 0
   2: 0100007F:5DC0 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000  1000        0 3333 1 000000006059d053 20 4 30 10 -1
`;
    expect([...parseListeningSockets(text, true)]).toEqual([
      ['1141', { host: '127.0.0.1', port: 2024 }],
      ['2222', { host: '127.0.0.1', port: 24000 }],
    ]);
    // A big-endian kernel prints the address in network order.
    expect(
      parseListeningSockets(`${HEADER}   0: 7F000001:5DC0 00000000:0000 0A 0 0 0 0 0 4444\n`, false).get(
        '4444',
      ),
    ).toEqual({ host: '127.0.0.1', port: 24000 });
  });

  it('reads IPv6 addresses word by word', () => {
    const v6 = (local: string, inode: string) =>
      `   0: ${local} 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 ${inode} 1\n`;
    const sockets = parseListeningSockets(
      `${HEADER}${v6('00000000000000000000000001000000:1F90', '1')}${v6('00000000000000000000000000000000:1F91', '2')}${v6('B80D0120000000000000000001000000:1F92', '3')}`,
      true,
    );
    expect(sockets.get('1')).toEqual({ host: '0:0:0:0:0:0:0:1', port: 8080 });
    expect(sockets.get('2')).toEqual({ host: '::1', port: 8081 });
    expect(sockets.get('3')).toEqual({ host: '2001:db8:0:0:0:0:0:1', port: 8082 });
  });

  it.runIf(process.platform === 'linux')('finds the address this process listens on', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    try {
      expect(listeningAddresses(process.pid)).toContainEqual({ host: '127.0.0.1', port });
    } finally {
      server.close();
    }
  });
});
