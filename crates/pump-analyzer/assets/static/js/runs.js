/* Runs list with search and difficulty filter, plus scans in progress. */
(function () {
  'use strict';
  const { api, el, $, mult, num, short, toast } = window.App;
  const PAGE = 25;
  let offset = 0;

  async function load() {
    const q = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
    const search = $('#search').value.trim();
    if (search) q.set('search', search);
    if ($('#difficulty').value) q.set('difficulty', $('#difficulty').value);
    const page = await api(`/runs?${q}`);
    $('#runs tbody').replaceChildren(...page.runs.map((r) => el('tr', { class: 'clickable', tabindex: 0, dataset: { id: r.id }, onclick: () => window.location.assign(`/runs/${r.id}`), onkeydown: (e) => { if (e.key === 'Enter') window.location.assign(`/runs/${r.id}`); } },
      el('td', {}, new Date(r.created_at).toLocaleString()), el('td', { class: 'mono' }, short(r.client_seed, 24)), el('td', {}, r.difficulty),
      el('td', {}, `${num(r.nonce_start)} – ${num(r.nonce_end)}`), el('td', {}, r.targets.map((t) => t.toFixed(2)).join(', ')),
      el('td', {}, num(Object.values(r.summary.counts_by_target).reduce((a, b) => a + b, 0))), el('td', {}, mult(r.summary.max_multiplier)), el('td', {}, `${num(r.duration_ms)} ms`))));
    $('#runs').hidden = page.total === 0;
    $('#runs-empty').hidden = page.total !== 0;
    $('#page').textContent = page.total ? `${offset + 1}–${Math.min(offset + PAGE, page.total)} of ${page.total}` : '';
    $('#prev').disabled = offset === 0;
    $('#next').disabled = offset + PAGE >= page.total;
  }

  function progressBar(fraction) {
    const bar = el('div');
    bar.style.width = `${(fraction * 100).toFixed(1)}%`; // CSSOM, allowed by the CSP (attributes are not)
    return el('div', { class: 'progress grow' }, bar);
  }

  async function loadActive() {
    const active = await api('/runs/active');
    $('#active').replaceChildren(...active.runs.map((r) => el('div', { class: 'row' },
      el('span', {}, `Scanning ${short(r.client_seed, 20)} (${r.difficulty}) — ${r.status}`),
      progressBar(r.progress),
      el('span', { class: 'muted' }, `${(r.progress * 100).toFixed(1)}%`))));
  }

  let timer = null;
  const reload = () => { clearTimeout(timer); timer = setTimeout(() => { offset = 0; load().catch((e) => toast(e.message, 'error')); }, 250); };
  $('#search').addEventListener('input', reload);
  $('#difficulty').addEventListener('change', reload);
  $('#filters').addEventListener('submit', (e) => { e.preventDefault(); reload(); });
  $('#prev').addEventListener('click', () => { offset = Math.max(0, offset - PAGE); load(); });
  $('#next').addEventListener('click', () => { offset += PAGE; load(); });
  window.sessionManager.init().then(() => Promise.all([load(), loadActive()])).catch((e) => toast(e.message, 'error'));
  setInterval(() => loadActive().catch(() => {}), 2000);
})();
