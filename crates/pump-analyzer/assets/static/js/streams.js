/* Streams list: live via /live/events, auto-follow, toast on a new seed pair, empty state. */
(function () {
  'use strict';
  const { api, el, $, mult, num, short, relative, toast } = window.App;
  const PAGE = 50;
  let streams = [];
  let total = 0;
  const follow = $('#auto-follow');
  follow.checked = localStorage.getItem('autoFollow') === '1';
  follow.addEventListener('change', () => localStorage.setItem('autoFollow', follow.checked ? '1' : '0'));

  function badge(verified, revealed) {
    if (!verified) return el('span', { class: 'badge', title: 'Server seed not revealed yet' }, 'seed hidden');
    if (verified.mismatched > 0) return el('span', { class: 'badge bad' }, `${verified.mismatched} mismatch`);
    if (verified.pending > 0) return el('span', { class: 'badge pending' }, `checking ${verified.checked}/${verified.checked + verified.pending}`);
    return el('span', { class: 'badge ok' }, revealed ? `✓ ${num(verified.matched)} verified` : '✓');
  }

  function render() {
    const body = $('#streams tbody');
    body.replaceChildren(
      ...streams.map((s) =>
        el(
          'tr',
          { class: 'clickable', tabindex: 0, dataset: { id: s.id }, onclick: () => window.location.assign(`/streams/${s.id}`), onkeydown: (e) => { if (e.key === 'Enter') window.location.assign(`/streams/${s.id}`); } },
          el('td', { class: 'mono', title: s.server_seed_hashed }, short(s.server_seed_hashed, 12)),
          el('td', { class: 'mono' }, s.client_seed),
          el('td', { title: s.last_seen_at, class: 'last-seen', dataset: { at: s.last_seen_at } }, relative(s.last_seen_at)),
          el('td', { class: 'bets' }, num(s.total_bets)),
          el('td', { class: 'highest' }, mult(s.highest_multiplier)),
          el('td', {}, badge(s.verified, s.seed_revealed)),
          el('td', { class: 'muted' }, short(s.notes || '', 30)),
        ),
      ),
    );
    $('#streams').hidden = streams.length === 0;
    $('#empty').hidden = streams.length !== 0;
    $('#more').hidden = streams.length >= total;
  }

  async function emptyState() {
    const config = await api('/api/config').catch(() => ({ token_required: false, rate_limit_per_minute: 60 }));
    const url = `${window.location.origin}/live/ingest`;
    const headers = config.token_required
      ? "{ 'Content-Type': 'application/json', 'X-Ingest-Token': 'YOUR_TOKEN' }"
      : "{ 'Content-Type': 'application/json' }";
    $('#empty').replaceChildren(
      el('h2', {}, 'No streams yet'),
      el('p', {}, 'Point your Antebot script at this server; streams appear here as soon as the first bet or heartbeat arrives.'),
      el('p', {}, 'Ingest URL: ', el('code', { id: 'ingest-url' }, url)),
      config.token_required
        ? el('p', {}, 'An ingest token is configured: send it in the ', el('code', {}, 'X-Ingest-Token'), ' header.')
        : el('p', { class: 'muted' }, 'No ingest token is configured (open access on this machine).'),
      el('pre', {}, `engine.onBetPlaced(async (lastBet) => {\n  await fetch('${url}', {\n    method: 'POST',\n    headers: ${headers},\n    body: JSON.stringify({ /* see README: Connect Antebot */ }),\n  });\n});`),
      el('p', { class: 'muted' }, `Rate limit: ${config.rate_limit_per_minute} requests per minute per client (INGEST_RATE_LIMIT).`),
    );
  }

  async function load(reset = true) {
    const offset = reset ? 0 : streams.length;
    const page = await api(`/live/streams?limit=${PAGE}&offset=${offset}`);
    streams = reset ? page.streams : streams.concat(page.streams);
    total = page.total;
    render();
    if (streams.length === 0) emptyState();
  }

  let reloadTimer = null;
  function reloadSoon() {
    if (reloadTimer) return;
    reloadTimer = setTimeout(() => {
      reloadTimer = null;
      load().catch(() => {});
    }, 400);
  }

  $('#more').addEventListener('click', () => load(false));
  setInterval(() => {
    for (const cell of document.querySelectorAll('td.last-seen')) cell.textContent = relative(cell.dataset.at);
  }, 5000);

  window.sessionManager.init().then(() => load()).catch((e) => toast(e.message, 'error'));
  App.live('/live/events?rounds=1', {
    // Heartbeats move "last seen" and the observed nonce.
    round: () => reloadSoon(),
    stream: (s) => {
      toast(`New seed pair: ${short(s.client_seed, 20)} / ${short(s.server_seed_hashed, 10)}`);
      reloadSoon();
    },
    bet: (bet) => {
      // The list shows what the API answers (SPEC §7): a bet marks it for a re-fetch.
      reloadSoon();
      if (follow.checked) window.location.assign(`/streams/${bet.stream_id}`);
    },
    deleted: () => reloadSoon(),
    verified: () => reloadSoon(),
  });
})();
