// Node `ws` echo server with permessage-deflate on: the peer for Tandem's compression benchmark.
//   NODE_PATH=/usr/share/nodejs node scripts/peers/node-ws-deflate.js PORT
'use strict';
const { WebSocketServer } = require('ws');
const port = Number(process.argv[2] || 9001);
const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  backlog: 4096,
  maxPayload: 64 * 1024 * 1024,
  // Same settings as Tandem's defaults: window 15, memLevel 8, level 6, 32-byte threshold.
  perMessageDeflate: { threshold: 32, zlibDeflateOptions: { level: 6, memLevel: 8 }, concurrencyLimit: 10 },
});
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});
wss.on('listening', () => console.log(`node-ws ${require('ws/package.json').version} (deflate) listening on 127.0.0.1:${port}`));
