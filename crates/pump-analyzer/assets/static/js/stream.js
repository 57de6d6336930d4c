/* Stream view: stats, ingest health, tier cards (cadence), pattern tape, live bet table,
 * multiplier distribution, pinned multipliers, notes, export, delete, seed reveal. */
(function () {
  'use strict';
  const { api, el, $, mult, num, relative, toast, tierClass } = window.App;
  const id = decodeURIComponent(window.location.pathname.split('/')[2] || '');
  const root = $('#stream-root');
  const STALE_SECONDS = 30;
  const TAPE_MAX = 5000;
  const state = {
    detail: null,
    rounds: [],
    bets: [],
    lastRoundAt: Date.now(),
    tiers: null, // the player's own, or the server's (set in start())
    pinned: JSON.parse(localStorage.getItem('pinned') || 'null') || null,
    filters: { min: '', difficulty: '', order: 'id_desc', highlight: '' },
  };

  function layout() {
    root.replaceChildren(
      el('div', { class: 'row' },
        el('h1', { class: 'grow', id: 'title' }, 'Stream'),
        el('a', { href: `/live/streams/${id}/export.csv`, id: 'export' }, el('button', {}, 'Export CSV')),
        el('button', { class: 'danger', id: 'delete', onclick: confirmDelete }, 'Delete stream')),
      el('div', { class: 'panel', id: 'seeds' }),
      el('div', { class: 'panel', id: 'demo', hidden: true }),
      el('div', { class: 'tiles', id: 'stats' }),
      el('div', { class: 'panel', id: 'health' }),
      el('h2', {}, 'Tier cadence ', el('span', { class: 'muted' }, '(expected values are long-run averages, not predictions)')),
      el('div', { class: 'row' },
        el('label', { class: 'grow' }, 'Tiers', el('input', { id: 'tiers-input', value: state.tiers.join(', ') })),
        el('button', { onclick: saveTiers }, 'Apply')),
      el('div', { class: 'tier-cards', id: 'tier-cards' }),
      el('h2', {}, 'Pattern tape ', el('span', { class: 'muted', id: 'tape-count' })),
      el('div', { class: 'panel' }, el('div', { class: 'tape', id: 'tape' }), legend()),
      el('h2', {}, 'Bets'),
      el('div', { class: 'panel' },
        el('div', { class: 'row' },
          el('label', {}, 'Min multiplier', el('input', { id: 'f-min', type: 'number', min: 0, step: '0.01', placeholder: '0' })),
          el('label', {}, 'Difficulty', el('select', { id: 'f-difficulty' }, ['', 'easy', 'medium', 'hard', 'expert'].map((d) => el('option', { value: d }, d || 'any')))),
          el('label', {}, 'Order', el('select', { id: 'f-order' }, el('option', { value: 'id_desc' }, 'arrival (newest first)'), el('option', { value: 'nonce_asc' }, 'nonce'))),
          el('label', {}, 'Highlight multiplier', el('input', { id: 'f-highlight', type: 'number', min: 0, step: '0.01' }))),
        el('table', { id: 'bets' },
          el('thead', {}, el('tr', {}, ['Id', 'Nonce', 'Result', 'Target', 'Difficulty', 'Amount', 'Payout', 'Distance', 'Verified', 'Received'].map((h) => el('th', {}, h)))),
          el('tbody')),
        el('div', { class: 'muted', id: 'bets-total' })),
      el('div', { class: 'row' },
        el('div', { class: 'panel grow' }, el('h2', {}, 'Multiplier distribution ', el('span', { class: 'muted' }, '(recent rounds)')), el('canvas', { class: 'chart', id: 'distribution', width: 600, height: 180 })),
        el('div', { class: 'panel grow' },
          el('h2', {}, 'Pinned multipliers'),
          el('div', { class: 'row' }, el('input', { id: 'pinned-input', class: 'grow', value: state.pinned.join(', ') }), el('button', { onclick: savePinned }, 'Apply')),
          el('table', { id: 'pinned' }, el('thead', {}, el('tr', {}, ['Multiplier', 'Seen', 'Last nonce', 'Mean gap', 'Median', 'p90', 'Max', 'Expected mean gap (average)'].map((h) => el('th', {}, h)))), el('tbody')))),
      el('div', { class: 'panel' }, el('h2', {}, 'Notes'), el('textarea', { id: 'notes', maxlength: 1000 }), el('div', { class: 'row' }, el('button', { id: 'save-notes', onclick: saveNotes }, 'Save notes'), el('span', { class: 'muted', id: 'notes-status' }))),
      el('div', { class: 'panel', id: 'reveal' },
        el('h2', {}, 'Seed reveal and verification'),
        el('form', { id: 'reveal-form', class: 'row', onsubmit: reveal },
          el('input', { id: 'reveal-seed', class: 'grow', placeholder: 'Revealed server seed (after rotating seeds on Stake)', autocomplete: 'off' }),
          el('button', { class: 'primary', type: 'submit' }, 'Verify bets')),
        el('div', { id: 'verification' })),
      el('dialog', { id: 'confirm-delete' },
        el('p', {}, 'Delete this stream and all its bets and rounds? This cannot be undone.'),
        el('form', { method: 'dialog', class: 'row' }, el('button', { value: 'cancel' }, 'Cancel'), el('button', { class: 'danger', value: 'delete', id: 'confirm-delete-button' }, 'Delete'))),
    );
    for (const [input, key] of [['#f-min', 'min'], ['#f-difficulty', 'difficulty'], ['#f-order', 'order']]) {
      $(input).addEventListener('change', (e) => { state.filters[key] = e.target.value; loadBets(); });
    }
    $('#f-highlight').addEventListener('input', (e) => { state.filters.highlight = e.target.value; renderBets(); });
  }

  function legend() {
    const first = App.TIERS[0];
    const items = [['tier-pop', 'pop at 1.00'], ['tier-0', '< 10×'], ['tier-0b', `10–${Math.floor(first)}×`]]
      .concat(App.TIERS.map((t, i) => [`tier-${i + 1}`, `≥ ${t}`]));
    return el('div', { class: 'legend' }, items.map(([c, t]) => el('span', {}, el('i', { class: c }), t)));
  }

  // ---- header, stats, health ------------------------------------------------------------------
  function renderDetail() {
    const d = state.detail;
    $('#title').replaceChildren(`Stream ${d.client_seed}`, d.demo ? el('span', { class: 'badge demo', id: 'demo-badge', title: 'Fed by the built-in demo, not by your bot' }, 'demo') : '');
    renderDemo();
    document.title = `${d.client_seed} · Pump Analyzer`;
    $('#seeds').replaceChildren(
      el('div', {}, el('span', { class: 'muted' }, 'Server seed (hashed): '), el('span', { class: 'mono', id: 'seed-hash' }, d.server_seed_hashed)),
      el('div', {}, el('span', { class: 'muted' }, 'Client seed: '), el('span', { class: 'mono' }, d.client_seed)),
      ...(d.server_seed ? [el('div', {}, el('span', { class: 'muted' }, 'Revealed server seed: '), el('span', { class: 'mono' }, d.server_seed))] : []),
    );
    const tile = (label, value, tid) => el('div', { class: 'tile' }, el('div', { class: 'label' }, label), el('div', { class: 'value', id: tid }, value));
    $('#stats').replaceChildren(
      tile('Bets', num(d.total_bets), 'stat-bets'),
      tile('Highest', mult(d.highest_multiplier), 'stat-highest'),
      tile('Lowest', mult(d.lowest_multiplier)),
      tile('Average', mult(d.average_multiplier)),
      tile('Wagered', num(d.total_amount)),
      tile('Paid out', num(d.total_payout)),
      tile('Rounds seen', num(d.rounds_count), 'stat-rounds'),
      tile('Breakdown', Object.entries(d.difficulty_breakdown).map(([k, v]) => `${k} ${v}`).join(' · ') || '—'),
    );
    if (document.activeElement !== $('#notes')) $('#notes').value = d.notes || '';
    renderVerification();
    renderHealth();
  }

  function renderHealth() {
    if (!state.detail) return;
    const d = state.detail;
    const seconds = Math.round((Date.now() - state.lastRoundAt) / 1000);
    const stale = seconds > STALE_SECONDS;
    // Bets count as rounds too: more rounds than bets means heartbeats arrive.
    const heartbeats = d.rounds_count > d.total_bets;
    const what = heartbeats ? 'last round received' : d.total_bets ? 'last bet received' : 'nothing received yet';
    const warning = !stale ? '' : heartbeats
      ? ' — rounds have stopped: is the bot still running?'
      : ' — no heartbeats from this bot: only full bets arrive, so quiet stretches look like this (see "Connect Antebot")';
    $('#health').replaceChildren(
      el('span', {}, 'Latest observed nonce: ', el('strong', { id: 'latest-nonce' }, num(d.last_observed_nonce))),
      el('span', { class: stale ? 'health stale' : 'health', id: 'heartbeat-age' },
        ` · ${what}${d.total_bets || heartbeats ? ` ${seconds}s ago` : ''}`, warning),
    );
  }

  async function loadDetail() {
    state.detail = await api(`/live/streams/${id}`);
    state.lastRoundAt = Date.parse(state.detail.last_seen_at) || Date.now();
    renderDetail();
  }

  // ---- cadence ----------------------------------------------------------------------------------
  function sparkline(canvas, gaps, expected) {
    const ctx = canvas.getContext('2d');
    const w = (canvas.width = canvas.clientWidth || 220);
    const h = (canvas.height = 46);
    ctx.clearRect(0, 0, w, h);
    if (!gaps.length) return;
    const max = Math.max(expected || 0, ...gaps.map((g) => g.gap)) * 1.1;
    const bw = w / gaps.length;
    gaps.forEach((g, i) => {
      const bh = (g.gap / max) * h;
      ctx.fillStyle = expected && g.gap > expected ? '#f59e0b' : '#3b82f6';
      ctx.fillRect(i * bw + 1, h - bh, bw - 2, bh);
    });
    if (expected) {
      const y = h - (expected / max) * h;
      ctx.strokeStyle = '#e4e8ee';
      ctx.setLineDash([3, 3]);
      ctx.beginPath();
      ctx.moveTo(0, y);
      ctx.lineTo(w, y);
      ctx.stroke();
    }
  }

  async function loadCadence() {
    const c = await api(`/live/streams/${id}/cadence?tiers=${state.tiers.join(',')}&k=10&band=400`);
    const cards = c.tiers.map((t) => {
      const delta = t.delta_to_expected;
      const due = delta === null ? '—' : delta >= 0 ? `due in ${num(Math.round(delta))} (on average)` : `overdue by ${num(Math.round(-delta))} (vs average)`;
      const canvas = el('canvas');
      const card = el('div', { class: 'tier-card', dataset: { tier: t.tier } },
        el('div', { class: 'row' }, el('strong', { class: 'grow' }, mult(t.tier)), el('span', { class: 'muted' }, `${num(t.hits)} hits`)),
        el('div', {}, 'Current streak ', el('strong', { class: 'streak' }, num(t.current_streak)), el('span', { class: 'muted' }, ` / expected gap (average) ${num(t.expected_gap && Math.round(t.expected_gap))}`)),
        el('div', { class: delta !== null && delta < 0 ? 'due overdue' : 'due' }, due),
        el('div', { class: 'gaps' }, 'Last gaps: ', t.last_gaps.map((g) => g.gap).join(', ') || '—'),
        el('div', {}, `within ±${c.band}: ${t.within_band}/${t.last_gaps.length}`),
        el('div', { class: 'muted' }, `hit rate last ${t.rounds_in_window}: ${t.hit_rate_last_1000 === null ? '—' : (t.hit_rate_last_1000 * 100).toFixed(2) + '%'} (expected ${(t.expected_hit_rate * 100).toFixed(2)}%)`),
        canvas);
      requestAnimationFrame(() => sparkline(canvas, t.last_gaps, t.expected_gap));
      return card;
    });
    $('#tier-cards').replaceChildren(...cards);
  }

  function saveTiers() {
    const tiers = $('#tiers-input').value.split(',').map((v) => Number(v.trim())).filter((v) => v > 0);
    if (!tiers.length) return toast('Enter at least one tier multiplier', 'error');
    state.tiers = tiers;
    localStorage.setItem('tiers', JSON.stringify(tiers));
    loadCadence().catch((e) => toast(e.message, 'error'));
  }

  // ---- pattern tape and distribution -------------------------------------------------------------
  function renderTapeCount() {
    $('#tape-count').textContent = `(last ${num(state.rounds.length)} rounds)`;
  }

  function renderTape() {
    const tape = $('#tape');
    tape.replaceChildren(...state.rounds.map((r) => el('span', { class: tierClass(r.round_result), title: `#${r.nonce}: ${mult(r.round_result)}` })));
    tape.scrollTop = tape.scrollHeight;
    renderTapeCount();
    renderDistribution();
  }

  /** Shows a live round at once; the next refresh of the rounds replaces the tape with the API's. */
  function appendRound(round) {
    if (state.rounds.some((r) => r.nonce === round.nonce)) return;
    state.rounds.push(round);
    const tape = $('#tape');
    tape.append(el('span', { class: tierClass(round.round_result), title: `#${round.nonce}: ${mult(round.round_result)}` }));
    if (state.rounds.length > TAPE_MAX) {
      state.rounds.shift();
      tape.firstChild.remove();
    }
    renderTapeCount();
  }

  function renderDistribution() {
    const canvas = $('#distribution');
    const T = App.TIERS;
    const buckets = [['1.00', (m) => m < 1.01], ['<2', (m) => m >= 1.01 && m < 2], ['2–10', (m) => m >= 2 && m < 10], [`10–${Math.floor(T[0])}`, (m) => m >= 10 && m < T[0]]]
      .concat(T.map((t, i) => [i === T.length - 1 ? `${Math.floor(t)}+` : String(Math.floor(t)), (m) => m >= t && (i === T.length - 1 || m < T[i + 1])]));
    const counts = buckets.map(([, test]) => state.rounds.filter((r) => test(r.round_result)).length);
    const ctx = canvas.getContext('2d');
    const w = (canvas.width = canvas.clientWidth || 600);
    const h = (canvas.height = 180);
    ctx.clearRect(0, 0, w, h);
    const max = Math.max(1, ...counts);
    const bw = w / buckets.length;
    ctx.font = '11px system-ui';
    counts.forEach((count, i) => {
      // Square-root scale keeps the rare high tiers visible next to the common small results.
      const bh = Math.sqrt(count / max) * (h - 34);
      ctx.fillStyle = ['#3a2430', '#2b3a4d', '#2b3a4d', '#3d5a80', '#0ea5e9', '#22c55e', '#eab308', '#f97316', '#ec4899'][i];
      ctx.fillRect(i * bw + 4, h - 18 - bh, bw - 8, bh);
      ctx.fillStyle = '#8d99a8';
      ctx.fillText(buckets[i][0], i * bw + 4, h - 4);
      ctx.fillStyle = '#e4e8ee';
      ctx.fillText(String(count), i * bw + 4, h - 22 - bh);
    });
  }

  async function loadRounds() {
    const r = await api(`/live/streams/${id}/rounds?limit=${TAPE_MAX}`);
    state.rounds = r.rounds;
    renderTape();
  }

  // ---- bets -----------------------------------------------------------------------------------
  function betMatches(b) {
    const f = state.filters;
    if (f.min !== '' && b.round_result < Number(f.min)) return false;
    if (f.difficulty && b.difficulty !== f.difficulty) return false;
    return true;
  }

  function betRow(b, fresh) {
    const highlight = state.filters.highlight !== '' && Math.round(b.round_result * 100) === Math.round(Number(state.filters.highlight) * 100);
    const classes = [fresh ? 'fresh' : '', highlight ? 'highlight' : '', b.verified === false ? 'mismatch' : ''].join(' ').trim();
    const verified = b.verified === null || b.verified === undefined ? '—' : b.verified ? '✓' : `✗ expected ${mult(b.expected_multiplier)}`;
    return el('tr', { class: classes, dataset: { id: b.id } },
      el('td', {}, b.id), el('td', {}, num(b.nonce)), el('td', {}, el('span', { class: `badge ${tierClass(b.round_result)}` }, mult(b.round_result))),
      el('td', {}, mult(b.round_target)), el('td', {}, b.difficulty), el('td', {}, b.amount), el('td', {}, b.payout),
      el('td', {}, b.distance_prev === null ? '—' : num(b.distance_prev)), el('td', {}, verified), el('td', { title: b.received_at }, relative(b.received_at)));
  }

  /** Bets that arrived live in the last few seconds keep their highlight across refreshes. */
  const freshIds = new Set();

  function renderBets() {
    $('#bets tbody').replaceChildren(...state.bets.map((b) => betRow(b, freshIds.has(b.id))));
  }

  async function loadBets() {
    const f = state.filters;
    const q = new URLSearchParams({ limit: '100', order: f.order });
    if (f.min !== '') q.set('min_multiplier', f.min);
    if (f.difficulty) q.set('difficulty', f.difficulty);
    const page = await api(`/live/streams/${id}/bets?${q}`);
    state.bets = page.bets;
    $('#bets-total').textContent = `${num(page.total)} bets match`;
    renderBets();
  }

  /** Shows a live bet at once; the next refresh of the table replaces it with the API's page. */
  function addBet(b) {
    if (!betMatches(b) || state.bets.some((x) => x.id === b.id)) return;
    freshIds.add(b.id);
    setTimeout(() => freshIds.delete(b.id), 5000);
    if (state.filters.order === 'id_desc') {
      state.bets.unshift(b);
      if (state.bets.length > 100) state.bets.pop();
    } else {
      state.bets.push(b);
      state.bets.sort((x, y) => x.nonce - y.nonce || x.id - y.id);
      if (state.bets.length > 100) state.bets.length = 100;
    }
    renderBets();
  }

  // ---- pinned multipliers ---------------------------------------------------------------------
  async function loadPinned() {
    const m = await api(`/live/streams/${id}/metrics?multipliers=${state.pinned.join(',')}`);
    $('#pinned tbody').replaceChildren(...m.multipliers.map((p) => el('tr', {},
      el('td', {}, mult(p.multiplier)), el('td', {}, num(p.count)), el('td', {}, num(p.last_nonce)),
      el('td', {}, num(p.mean_gap && Math.round(p.mean_gap))), el('td', {}, num(p.median_gap)), el('td', {}, num(p.p90_gap)),
      el('td', {}, num(p.max_gap)), el('td', {}, num(p.theoretical_mean_gap && Math.round(p.theoretical_mean_gap))))));
  }

  function savePinned() {
    const pinned = $('#pinned-input').value.split(',').map((v) => Number(v.trim())).filter((v) => v > 0);
    if (!pinned.length) return toast('Enter at least one multiplier', 'error');
    state.pinned = pinned;
    localStorage.setItem('pinned', JSON.stringify(pinned));
    loadPinned().catch((e) => toast(e.message, 'error'));
  }

  // ---- demo controls --------------------------------------------------------------------------
  async function demoCall(path, options) {
    try {
      return await api(path, options);
    } catch (e) {
      toast(e.message, 'error');
      return null;
    }
  }

  /** A demo stream gets its controls: pace, stop, and the reveal that verifies every bet. */
  function renderDemo() {
    const box = $('#demo');
    if (!state.detail.demo) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    if (box.dataset.ready) return;
    box.dataset.ready = '1';
    const rate = el('input', { id: 'demo-rate', type: 'number', min: 1, max: 1000, value: 10 });
    const status = el('span', { class: 'muted', id: 'demo-status' });
    const show = (d) => {
      if (!d) return;
      rate.value = d.rate;
      status.textContent = d.running ? `feeding ${d.rate} rounds/s (nonce ${num(d.last_nonce)})` : 'stopped';
    };
    box.replaceChildren(
      el('h2', {}, 'Demo feed'),
      el('p', { class: 'muted' }, 'This stream is a demo: rounds come from the engine on a random seed pair, through the same ingest path as a bot. Reveal its seed to see every recorded bet verified.'),
      el('div', { class: 'row' },
        el('label', {}, 'Rounds per second', rate),
        el('button', { id: 'demo-set-rate', onclick: async () => show(await demoCall(`/live/demo/${id}`, { method: 'PUT', json: { rate: Number(rate.value) } })) }, 'Set pace'),
        el('button', { id: 'demo-stop', onclick: async () => show(await demoCall(`/live/demo/${id}`, { method: 'DELETE' })) }, 'Stop'),
        el('button', { id: 'demo-reveal', class: 'primary', onclick: async () => {
          const r = await demoCall(`/live/demo/${id}/reveal`, { method: 'POST' });
          if (r) {
            status.textContent = 'stopped and revealed';
            refresh(() => loadDetail().then(loadBets));
          }
        } }, 'Reveal seed and verify'),
        status));
    demoCall('/live/demo').then((r) => show(r && r.demos.find((d) => d.stream_id === id)));
  }

  // ---- notes, delete, reveal ------------------------------------------------------------------
  async function saveNotes() {
    try {
      const s = await api(`/live/streams/${id}`, { method: 'PUT', json: { notes: $('#notes').value } });
      $('#notes').value = s.notes || '';
      $('#notes-status').textContent = 'Saved';
    } catch (e) {
      $('#notes-status').textContent = e.message;
    }
  }

  function confirmDelete() {
    const dialog = $('#confirm-delete');
    dialog.addEventListener('close', async function onClose() {
      dialog.removeEventListener('close', onClose);
      if (dialog.returnValue !== 'delete') return;
      // Stop the background refreshes and let those in flight finish first, so that none of
      // them asks for the stream after it is gone.
      stopRefreshing();
      await Promise.allSettled([...inflight]);
      try {
        const r = await api(`/live/streams/${id}`, { method: 'DELETE' });
        toast(`Deleted stream and ${r.bets_deleted} bets`);
        window.location.assign('/');
      } catch (e) {
        gone = false;
        toast(e.message, 'error');
      }
    });
    dialog.showModal();
  }

  function renderVerification() {
    const v = state.detail.verified;
    const box = $('#verification');
    if (!v) {
      box.replaceChildren(el('p', { class: 'muted' }, 'The server seed is not revealed yet. After you rotate your seed pair on Stake, paste the revealed server seed above: every recorded bet is replayed through the provably-fair engine.'));
      return;
    }
    box.replaceChildren(
      el('p', { id: 'verification-summary' }, el('span', { class: v.mismatched ? 'badge bad' : 'badge ok' }, v.mismatched ? 'Mismatches found' : 'All checked bets match'),
        ` checked ${num(v.checked)} · matched ${num(v.matched)} · mismatched ${num(v.mismatched)}`, v.pending ? ` · ${num(v.pending)} pending` : ''),
      ...(v.first_mismatch ? [el('p', { class: 'error' }, `First mismatch: nonce ${v.first_mismatch.nonce} (bet ${v.first_mismatch.antebot_bet_id}) recorded ${mult(v.first_mismatch.round_result)}, engine says ${mult(v.first_mismatch.expected_multiplier)}`)] : []),
    );
  }

  async function reveal(event) {
    event.preventDefault();
    const seed = $('#reveal-seed').value.trim();
    if (!seed) return toast('Paste the revealed server seed first', 'error');
    try {
      const r = await api('/live/seeds', { method: 'POST', json: { server_seed: seed } });
      if (!r.streams.some((s) => s.id === id)) toast('Stored, but this seed does not hash to this stream’s server seed hash', 'error');
      await Promise.all([loadDetail(), loadBets()]);
    } catch (e) {
      toast(e.message, 'error');
    }
  }

  // ---- live -----------------------------------------------------------------------------------
  /** The stream is being deleted or is gone: background refreshes stop asking for it. */
  let gone = false;
  /** Background refreshes still waiting for their answer. */
  const inflight = new Set();

  /** Runs one background refresh unless the stream is gone, remembering it while it runs. */
  function refresh(load) {
    if (gone) return;
    const p = load().catch(() => {});
    inflight.add(p);
    p.finally(() => inflight.delete(p));
  }

  function stopRefreshing() {
    gone = true;
    clearTimeout(refreshTimer);
    refreshTimer = null;
    dirty.clear();
  }

  /** Every number a live event changes comes from the API (SPEC §7): an event shows what it
   * carries at once, then marks the parts it touches for a re-fetch, at most one round of
   * re-fetches per REFRESH_MS while events keep coming. */
  const REFRESH_MS = 500;
  const dirty = new Set();
  let refreshTimer = null;

  function refreshSoon(...loaders) {
    for (const load of loaders) dirty.add(load);
    if (refreshTimer || gone) return;
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      const loads = [...dirty];
      dirty.clear();
      for (const load of loads) refresh(load);
    }, REFRESH_MS);
  }

  async function start() {
    const config = await App.ready;
    state.tiers = JSON.parse(localStorage.getItem('tiers') || 'null') || config.tiers.slice();
    state.pinned = state.pinned || [config.tiers[1], config.tiers[2], config.tiers[4]];
    layout();
    try {
      await window.sessionManager.init();
      await loadDetail();
    } catch (e) {
      root.replaceChildren(el('h1', {}, 'Stream'), el('div', { class: 'error' }, e.status === 404 ? 'This stream does not exist (it may have been deleted).' : e.message), el('a', { href: '/' }, 'Back to streams'));
      return;
    }
    await Promise.all([loadBets(), loadRounds(), loadCadence(), loadPinned()]).catch((e) => toast(e.message, 'error'));
    App.live(`/live/streams/${id}/events`, {
      bet: (b) => {
        addBet(b);
        appendRound({ nonce: b.nonce, round_result: b.round_result });
        state.lastRoundAt = Date.now();
        refreshSoon(loadDetail, loadBets, loadRounds, loadCadence, loadPinned);
      },
      round: (r) => {
        state.lastRoundAt = Date.now();
        state.detail.last_observed_nonce = Math.max(state.detail.last_observed_nonce || 0, r.nonce);
        appendRound(r);
        renderHealth();
        refreshSoon(loadDetail, loadRounds, loadCadence);
      },
      verified: () => refresh(() => loadDetail().then(loadBets)),
      deleted: () => {
        stopRefreshing();
        toast('This stream was deleted', 'error');
        setTimeout(() => window.location.assign('/'), 1500);
      },
    });
    setInterval(renderHealth, 1000);
    setInterval(() => renderDistribution(), 10000);
    if (localStorage.getItem('autoFollow') === '1') {
      App.live('/live/events', { bet: (b) => { if (b.stream_id !== id) window.location.assign(`/streams/${b.stream_id}`); } });
    }
  }

  start();
})();
