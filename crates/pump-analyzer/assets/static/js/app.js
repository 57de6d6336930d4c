/* Shared dashboard helpers: API calls through the session client, DOM building, formatting,
 * toasts, and the session warning / expiry banner. Every write goes through sessionManager.fetch
 * (CSRF token attached). Text is always inserted with textContent, never as HTML. */
(function () {
  'use strict';

  const App = {};

  /** JSON API call; throws an Error carrying the server's message. */
  App.api = async function (path, options = {}) {
    const init = Object.assign({ headers: { Accept: 'application/json' } }, options);
    if (options.json !== undefined) {
      init.body = JSON.stringify(options.json);
      init.headers = { Accept: 'application/json', 'Content-Type': 'application/json' };
      delete init.json;
    }
    const response = await window.sessionManager.fetch(path, init);
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (!response.ok) {
      const message =
        (body && body.error && body.error.message) || (body && body.message) || `HTTP ${response.status}`;
      const error = new Error(message);
      error.status = response.status;
      error.body = body;
      throw error;
    }
    return body;
  };

  /** el('div', {class: 'x', onclick: fn}, 'text', child, …) */
  App.el = function (tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
      else if (key === 'class') node.className = value;
      else if (key === 'dataset') Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? '' : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  };

  App.$ = (selector, root) => (root || document).querySelector(selector);

  App.mult = (m) => (m === null || m === undefined ? '—' : `${Number(m).toFixed(2)}×`);
  App.num = (n) => (n === null || n === undefined ? '—' : Number(n).toLocaleString('en-US'));
  App.short = (s, n = 10) => (s && s.length > n ? `${s.slice(0, n)}…` : s || '');

  App.relative = function (iso) {
    if (!iso) return '—';
    const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (seconds < 5) return 'just now';
    if (seconds < 60) return `${seconds}s ago`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
    if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
    return `${Math.floor(seconds / 86400)}d ago`;
  };

  /** The tier multipliers, as the server serves them (`GET /api/config`, one source): pages that
   * colour or count by tier await `App.ready` first. */
  App.TIERS = [];
  App.ready = fetch('/api/config', { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
    .then((r) => r.json())
    .then((config) => {
      App.config = config;
      App.TIERS = config.tiers;
      return config;
    });

  /** Tier colour class of a multiplier (pattern tape, rows, badges): tier-1 … tier-5 at or above
   * each tier, and three shades below the first. */
  App.tierClass = function (m) {
    for (let i = App.TIERS.length - 1; i >= 0; i--) if (m >= App.TIERS[i]) return `tier-${i + 1}`;
    if (m >= 10) return 'tier-0b';
    if (m > 1) return 'tier-0';
    return 'tier-pop';
  };

  App.toast = function (message, kind = 'info') {
    let box = App.$('#toasts');
    if (!box) {
      box = App.el('div', { id: 'toasts', role: 'status', 'aria-live': 'polite' });
      document.body.append(box);
    }
    const item = App.el('div', { class: `toast toast-${kind}` }, message);
    box.append(item);
    setTimeout(() => item.remove(), 6000);
  };

  App.showError = function (target, error) {
    target.replaceChildren(App.el('div', { class: 'error', role: 'alert' }, error.message || String(error)));
  };

  // ---- live events ------------------------------------------------------------------------
  // Every tab of the browser shares one connection (SPEC §7): a SharedWorker holds the only
  // EventSource and hands each event to every tab; a tab keeps the events of the stream it shows
  // (or, on /live/events, of every stream). Without SharedWorker, each page opens its own.
  const subscribers = new Set();
  let port = null;

  function setOnline(online) {
    document.body.classList.toggle('offline', !online);
  }

  function sharedPort() {
    if (port || !window.SharedWorker) return port;
    try {
      const worker = new SharedWorker('/static/js/live-worker.js', { name: 'pump-live' });
      port = worker.port;
    } catch (_) {
      return null;
    }
    port.addEventListener('message', (message) => {
      const m = message.data || {};
      if (m.type === 'status') setOnline(m.online);
      if (m.type === 'event') for (const deliver of subscribers) deliver(m.name, m.data, m.id);
    });
    port.start();
    window.addEventListener('pagehide', () => port.postMessage({ type: 'bye' }));
    return port;
  }

  /** Calls `handlers[name](data, {lastEventId})` for each live event of `url`'s scope:
   * `/live/streams/{id}/events` (that stream's bet, round, verified and deleted events) or
   * `/live/events` (every stream's bet, stream, verified and deleted events; with `?rounds=1`
   * their round events too). */
  App.live = function (url, handlers) {
    const match = /^\/live\/streams\/([^/?]+)\/events/.exec(url);
    const streamId = match ? decodeURIComponent(match[1]) : null;
    const deliver = (name, raw, id) => {
      const handler = handlers[name];
      if (!handler) return;
      let data = null;
      try {
        data = JSON.parse(raw);
      } catch (_) {
        return;
      }
      if (streamId && (!data || data.stream_id !== streamId)) return;
      handler(data, { lastEventId: id });
    };
    if (sharedPort()) {
      subscribers.add(deliver);
      return { close: () => subscribers.delete(deliver) };
    }
    const source = new EventSource(url);
    for (const name of Object.keys(handlers)) {
      source.addEventListener(name, (event) => deliver(name, event.data, event.lastEventId));
    }
    source.addEventListener('open', () => setOnline(true));
    source.addEventListener('error', () => setOnline(false));
    return source;
  };

  App.download = function (href) {
    const link = App.el('a', { href, download: '' });
    document.body.append(link);
    link.click();
    link.remove();
  };

  // ---- session banner ------------------------------------------------------------------------
  function banner() {
    let node = App.$('#session-banner');
    if (!node) {
      node = App.el('div', { id: 'session-banner', role: 'alert', hidden: true });
      document.body.prepend(node);
    }
    return node;
  }

  window.addEventListener('sessionWarning', (event) => {
    const node = banner();
    const seconds = event.detail.remainingSeconds;
    node.className = 'banner warning';
    node.replaceChildren(
      App.el('span', {}, `Your session expires in ${Math.ceil(seconds / 60)} min (${seconds} s) without activity.`),
      App.el(
        'button',
        {
          id: 'session-extend',
          onclick: async () => {
            await window.sessionManager.extendSession();
            node.hidden = true;
          },
        },
        'Extend session',
      ),
    );
    node.hidden = false;
  });

  window.addEventListener('sessionExpired', (event) => {
    const node = banner();
    node.className = 'banner expired';
    node.replaceChildren(
      App.el('span', {}, event.detail.message || 'Your session has expired.'),
      App.el('button', { onclick: () => window.location.reload() }, 'Start a new session'),
    );
    node.hidden = false;
  });

  // Highlight the current section in the navigation.
  document.addEventListener('DOMContentLoaded', () => {
    const path = window.location.pathname;
    for (const link of document.querySelectorAll('nav a')) {
      const href = link.getAttribute('href');
      if (href === path || (href !== '/' && path.startsWith(href))) link.classList.add('active');
    }
  });

  window.App = App;
})();
