/* Run detail: summary, hits with a minimum-multiplier filter, exports, duplicate. */
(function () {
  'use strict';
  const { api, el, $, mult, num, toast } = window.App;
  const id = decodeURIComponent(window.location.pathname.split('/')[2] || '');
  const root = $('#run-root');
  const PAGE = 100;
  let offset = 0;

  async function loadHits() {
    const q = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
    const min = $('#min').value;
    if (min !== '') q.set('min_multiplier', min);
    const page = await api(`/runs/${id}/hits?${q}`);
    $('#hits tbody').replaceChildren(...page.hits.map((h) => el('tr', {},
      el('td', {}, num(h.nonce)), el('td', {}, el('span', { class: `badge ${App.tierClass(h.max_multiplier)}` }, mult(h.max_multiplier))),
      el('td', {}, h.max_pumps), el('td', {}, h.pop_point))));
    $('#hits-page').textContent = page.total ? `${offset + 1}–${Math.min(offset + PAGE, page.total)} of ${num(page.total)}` : 'no hits';
    $('#prev').disabled = offset === 0;
    $('#next').disabled = offset + PAGE >= page.total;
  }

  async function start() {
    await Promise.all([window.sessionManager.init(), App.ready]);
    let run;
    try {
      run = await api(`/runs/${id}`);
    } catch (e) {
      root.replaceChildren(el('h1', {}, 'Run'), el('div', { class: 'error' }, e.message), el('a', { href: '/runs' }, 'Back to runs'));
      return;
    }
    const s = run.summary;
    const duplicate = new URLSearchParams({ server_seed: run.server_seed, client_seed: run.client_seed, difficulty: run.difficulty,
      start: String(run.nonce_end + 1), end: String(run.nonce_end + (run.nonce_end - run.nonce_start + 1)), targets: run.targets.join(', ') });
    root.replaceChildren(
      el('div', { class: 'row' }, el('h1', { class: 'grow' }, `Run · ${run.client_seed}`),
        el('a', { href: `/runs/new?${duplicate}` }, el('button', {}, 'Duplicate with a new range')),
        el('button', { class: 'danger', onclick: async () => {
          if (!window.confirm('Delete this run and its hits?')) return;
          await api(`/runs/${id}`, { method: 'DELETE' }).then(() => window.location.assign('/runs')).catch((e) => toast(e.message, 'error'));
        } }, 'Delete')),
      el('div', { class: 'panel' },
        el('div', {}, el('span', { class: 'muted' }, 'Server seed: '), el('span', { class: 'mono' }, run.server_seed)),
        el('div', {}, el('span', { class: 'muted' }, 'SHA-256: '), el('span', { class: 'mono' }, run.server_seed_sha256)),
        el('div', {}, el('span', { class: 'muted' }, 'Client seed: '), el('span', { class: 'mono' }, run.client_seed)),
        el('div', { class: 'muted' }, `${run.difficulty} · nonces ${num(run.nonce_start)}–${num(run.nonce_end)} · ${num(run.duration_ms)} ms · ${run.engine_version}`)),
      el('div', { class: 'tiles', id: 'summary' },
        ...[['Nonces scanned', num(s.count)], ['Hits', num(Object.values(s.counts_by_target).reduce((a, b) => a + b, 0))],
          ['Range max', mult(s.max_multiplier) + (s.top_max.length ? ` @ ${num(s.top_max[0].nonce)}` : '')],
          ['Range median', mult(s.median_multiplier)]]
          .concat(Object.entries(s.counts_by_target).map(([t, n]) => [`${t}×`, num(n)]))
          .map(([label, value]) => el('div', { class: 'tile' }, el('div', { class: 'label' }, label), el('div', { class: 'value' }, value)))),
      el('div', { class: 'row' },
        el('a', { href: `/runs/${id}/export/hits.csv` }, el('button', {}, 'Export hits CSV')),
        el('a', { href: `/runs/${id}/export/full.csv` }, el('button', {}, 'Export every nonce CSV'))),
      el('div', { class: 'panel' },
        el('div', { class: 'row' }, el('h2', { class: 'grow' }, 'Hits'), el('label', {}, 'Min multiplier', el('input', { id: 'min', type: 'number', min: 0, step: '0.01' }))),
        el('table', { id: 'hits' }, el('thead', {}, el('tr', {}, ['Nonce', 'Multiplier', 'Max pumps', 'Pop point'].map((h) => el('th', {}, h)))), el('tbody')),
        el('div', { class: 'row' }, el('button', { id: 'prev' }, 'Previous'), el('span', { id: 'hits-page', class: 'muted' }), el('button', { id: 'next' }, 'Next'))),
    );
    $('#min').addEventListener('change', () => { offset = 0; loadHits().catch((e) => toast(e.message, 'error')); });
    $('#prev').addEventListener('click', () => { offset = Math.max(0, offset - PAGE); loadHits(); });
    $('#next').addEventListener('click', () => { offset += PAGE; loadHits(); });
    await loadHits();
  }

  start().catch((e) => toast(e.message, 'error'));
})();
