/**
 * ipx 3 (the Node image server a user would otherwise pick; same sharp) serving IPX_DIR, at its
 * defaults, for the side-by-side bench. Prints `{"port":N}` once listening.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createIPX, createIPXNodeServer, ipxFSStorage, ipxHttpStorage } from 'ipx';

// IPX_HTTP_DOMAINS: hosts ipx may fetch remote sources from (`/w_800/http://host/a.jpg`), as configured for remote images.
const domains = process.env.IPX_HTTP_DOMAINS;
const ipx = createIPX({
  storage: ipxFSStorage({ dir: process.env.IPX_DIR ?? '.' }),
  ...(domains && { httpStorage: ipxHttpStorage({ domains: domains.split(',') }) }),
});
const server = http.createServer(createIPXNodeServer(ipx));
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
