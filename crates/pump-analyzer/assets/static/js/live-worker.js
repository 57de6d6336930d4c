/* One live connection per browser (SPEC §7). Browsers allow 6 HTTP/1.1 connections per origin,
 * so an EventSource per tab freezes the dashboard at the 7th tab. This SharedWorker holds the
 * browser's only EventSource, on /live/events?rounds=1 (every stream's bets, rounds, new
 * streams, deletions and verifications), and hands each event to every tab connected to it;
 * each tab keeps what concerns it. The worker outlives any one tab, and the EventSource resumes
 * after a drop from its Last-Event-ID, so no bet is lost. */
'use strict';

const ports = new Set();
const NAMES = ['bet', 'round', 'stream', 'deleted', 'verified'];
let source = null;
let online = false;

function broadcast(message) {
  for (const port of ports) {
    try {
      port.postMessage(message);
    } catch (_) {
      ports.delete(port);
    }
  }
}

function connect() {
  source = new EventSource('/live/events?rounds=1');
  for (const name of NAMES) {
    source.addEventListener(name, (event) => broadcast({ type: 'event', name, data: event.data, id: event.lastEventId }));
  }
  source.addEventListener('open', () => {
    online = true;
    broadcast({ type: 'status', online });
  });
  source.addEventListener('error', () => {
    online = false;
    broadcast({ type: 'status', online });
  });
}

self.addEventListener('connect', (event) => {
  const port = event.ports[0];
  ports.add(port);
  port.addEventListener('message', (message) => {
    if (message.data && message.data.type === 'bye') {
      ports.delete(port);
      if (ports.size === 0 && source) {
        // The last tab left: the connection closes until a tab comes back.
        source.close();
        source = null;
        online = false;
      }
    }
  });
  port.start();
  if (!source) connect();
  port.postMessage({ type: 'status', online });
});
