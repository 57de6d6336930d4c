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
          el('td', { class: 'mono' }, s.client_seed, s.demo ? [' ', el('span', { class: 'badge demo', title: 'Fed by the built-in demo, not by your bot' }, 'demo')] : null),
          el('td', { title: s.last_seen_at, class: 'last-seen', dataset: { at: s.last_seen_at } }, relative(s.last_seen_at)),
          el('td', { class: 'bets' }, num(s.total_bets)),
          el('td', { class: 'highest' }, mult(s.highest_multiplier)),
          el('td', {}, badge(s.verified, s.seed_revealed)),
          el('td', { class: 'muted' }, short(s.notes || '', 30)),
        ),
      ),
    );
    $('#streams').hidden = streams.length === 0;
    $('#empty').hidden = streams.length !== 0 && !startedEmpty;
    renderChecklist();
    $('#more').hidden = streams.length >= total;
  }

  /** The page opened with no stream: its set-up panel (script, checklist) stays up while the
   * first stream arrives, and its checklist follows it live. */
  let startedEmpty = false;
  const README_URL = 'http://127.0.0.1:8000/live/ingest';

  async function emptyState() {
    const config = await App.ready.catch(() => ({ token_required: false, rate_limit_per_minute: 60 }));
    const url = `${window.location.origin}/live/ingest`;
    // The README's script, one file embedded in the server, with this server's URL filled in.
    let script = await fetch('/static/antebot/pump-feed.js').then((r) => r.text()).catch(() => '');
    script = script.replace(`'${README_URL}'`, `'${url}'`);
    if (config.token_required) {
      script = script.replace("const PUMP_TOKEN = '';", "const PUMP_TOKEN = 'PASTE_YOUR_INGEST_TOKEN_HERE'; // <-- your INGEST_TOKEN");
    }
    const copy = el('button', { id: 'copy-script', onclick: async () => {
      try {
        await navigator.clipboard.writeText(script);
        copy.textContent = 'Copied';
      } catch (_) {
        const range = document.createRange();
        range.selectNodeContents($('#antebot-script'));
        window.getSelection().removeAllRanges();
        window.getSelection().addRange(range);
        copy.textContent = 'Selected: press Ctrl+C';
      }
    } }, 'Copy script');
    const demo = el('button', { id: 'watch-demo', class: 'primary', onclick: async () => {
      demo.disabled = true;
      try {
        const d = await api('/live/demo', { method: 'POST', json: { rate: 10 } });
        window.location.assign(`/streams/${d.stream_id}`);
      } catch (e) {
        demo.disabled = false;
        toast(e.message, 'error');
      }
    } }, 'Watch a demo');
    $('#empty').replaceChildren(
      el('div', { class: 'row' }, el('p', { class: 'grow' }, 'No bot running yet? See what Pump Analyzer does with a demo stream fed live from the provably-fair engine.'), demo),
      el('h2', {}, 'Connect your bot'),
      el('ol', { id: 'checklist', class: 'checklist' },
        el('li', {}, 'Copy the script below and paste it into Antebot’s script editor (game: Pump).'),
        config.token_required
          ? el('li', {}, 'An ingest token is configured: replace ', el('code', {}, 'PASTE_YOUR_INGEST_TOKEN_HERE'), ' with your ', el('code', {}, 'INGEST_TOKEN'), '.')
          : el('li', { class: 'muted' }, 'No ingest token is configured (open access on this machine): nothing to fill in.'),
        el('li', { id: 'checklist-status', class: 'waiting' }, 'Start betting: waiting for your bot…')),
      el('p', {}, 'Ingest URL: ', el('code', { id: 'ingest-url' }, url)),
      el('div', { class: 'row' }, copy),
      el('pre', { id: 'antebot-script' }, script),
      el('p', { class: 'muted' }, `Rate limit: ${config.rate_limit_per_minute} requests per minute per client (INGEST_RATE_LIMIT); the script sends about one per second.`),
    );
    renderChecklist();
  }

  function renderChecklist() {
    const status = $('#checklist-status');
    if (!status || !streams.length) return;
    const s = streams[0];
    const rounds = Math.max(s.rounds_count || 0, s.total_bets || 0);
    status.className = 'receiving';
    status.replaceChildren(
      `Receiving: ${num(rounds)} rounds from seed ${short(s.client_seed, 20)} — `,
      el('a', { href: `/streams/${s.id}`, id: 'checklist-stream' }, 'open the stream'));
  }

  async function load(reset = true) {
    const offset = reset ? 0 : streams.length;
    const page = await api(`/live/streams?limit=${PAGE}&offset=${offset}`);
    streams = reset ? page.streams : streams.concat(page.streams);
    total = page.total;
    if (reset && offset === 0 && streams.length === 0 && !startedEmpty) {
      startedEmpty = true;
      emptyState();
    }
    render();
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
