/* One simulation: live progress and cancel, then the stats beside the expected profit, the
 * profit curve, the console log in the script's colours, notifications and files; for a Monte
 * Carlo, the histogram of final profits with P(profit > 0) and P(bust). */
(function () {
  'use strict';
  const { api, el, $, num, toast } = window.App;
  const id = decodeURIComponent(window.location.pathname.split('/')[2] || '');
  const root = $('#sim-root');
  const money = (v) => (v === null || v === undefined ? '—' : Number(v).toLocaleString('en-US', { maximumFractionDigits: 8 }));
  let timer = null;

  function tile(label, value, tid) {
    return el('div', { class: 'tile' }, el('div', { class: 'label' }, label), el('div', { class: 'value', id: tid }, value));
  }

  function chart(canvas, points, xOf, yOf) {
    const ctx = canvas.getContext('2d');
    const w = (canvas.width = canvas.clientWidth || 800);
    const h = (canvas.height = 220);
    ctx.clearRect(0, 0, w, h);
    if (points.length < 2) return;
    const xs = points.map(xOf);
    const ys = points.map(yOf);
    const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
    const [y0, y1] = [Math.min(0, ...ys), Math.max(0, ...ys)];
    const px = (x) => ((x - x0) / (x1 - x0 || 1)) * (w - 20) + 10;
    const py = (y) => h - 10 - ((y - y0) / (y1 - y0 || 1)) * (h - 20);
    ctx.strokeStyle = '#4b5563';
    ctx.beginPath();
    ctx.moveTo(0, py(0));
    ctx.lineTo(w, py(0));
    ctx.stroke();
    ctx.strokeStyle = '#3b82f6';
    ctx.beginPath();
    points.forEach((p, i) => (i ? ctx.lineTo(px(xs[i]), py(ys[i])) : ctx.moveTo(px(xs[i]), py(ys[i]))));
    ctx.stroke();
  }

  function histogram(canvas, values) {
    const ctx = canvas.getContext('2d');
    const w = (canvas.width = canvas.clientWidth || 800);
    const h = (canvas.height = 220);
    ctx.clearRect(0, 0, w, h);
    if (!values.length) return;
    const lo = Math.min(...values);
    const hi = Math.max(...values);
    const bins = 30;
    const counts = new Array(bins).fill(0);
    for (const v of values) counts[Math.min(bins - 1, Math.floor(((v - lo) / (hi - lo || 1)) * bins))]++;
    const max = Math.max(...counts);
    const bw = w / bins;
    counts.forEach((c, i) => {
      const edge = lo + ((hi - lo) * (i + 0.5)) / bins;
      ctx.fillStyle = edge > 0 ? '#22c55e' : '#ef4444';
      const bh = (c / max) * (h - 20);
      ctx.fillRect(i * bw + 1, h - bh, bw - 2, bh);
    });
  }

  function download(name, text) {
    const link = el('a', { href: URL.createObjectURL(new Blob([text], { type: 'text/plain' })), download: name });
    document.body.append(link);
    link.click();
    link.remove();
  }

  function renderOne(r) {
    const s = r.stats;
    const stop = r.stop;
    const canvas = el('canvas', { class: 'chart', id: 'curve' });
    root.replaceChildren(
      el('div', { class: 'panel' },
        el('div', {}, el('span', { class: 'muted' }, 'Server seed: '), el('span', { class: 'mono', id: 'sim-server-seed' }, r.seed.server_seed)),
        el('div', {}, el('span', { class: 'muted' }, 'Client seed: '), el('span', { class: 'mono' }, r.seed.client_seed), el('span', { class: 'muted' }, ` · from nonce ${num(r.seed.start_nonce)}`)),
        el('div', { id: 'sim-stop', class: stop.reason === 'script_error' ? 'error' : '' },
          `Stopped: ${stop.reason} at nonce ${stop.nonce === null ? '—' : num(stop.nonce)}`, stop.message ? ` — ${stop.message}` : '', stop.line ? ` (line ${stop.line})` : '')),
      el('div', { class: 'tiles', id: 'sim-stats' },
        tile('Bets', num(s.bets), 'sim-bets'), tile('Wins', num(s.wins)), tile('Losses', num(s.losses)),
        tile('Wagered', money(s.wagered)), tile('Profit', money(s.profit), 'sim-profit'),
        tile('Expected profit (average)', money(r.expected_profit), 'sim-expected'), tile('Balance', money(s.balance)),
        tile('RTP', `${Number(s.rtp).toFixed(2)}%`), tile('Max drawdown', money(s.max_drawdown)),
        tile('Highest bet', money(s.highest_bet)), tile('Best win streak', num(s.best_win_streak)),
        tile('Worst loss streak', num(s.worst_loss_streak)), tile('Vaulted', money(s.vaulted))),
      el('div', { class: 'panel' }, el('h2', {}, 'Profit over the bets'), canvas),
      el('div', { class: 'panel' }, el('h2', {}, `Console (${num(r.logs_total || r.logs.length)} lines${r.logs_total > r.logs.length ? ', the first and last 500 kept' : ''})`),
        el('pre', { id: 'sim-console', class: 'console' }, r.logs.map((l) => el('div', { style: null, class: 'log-line', dataset: { color: l.color || '' } }, `[${l.bet}] ${l.text}`)))),
      el('div', { class: 'panel' }, el('h2', {}, 'Notifications'),
        r.notifications.length ? el('ul', { id: 'sim-notifications' }, r.notifications.map((n) => el('li', { class: `note-${n.type}` }, `[${n.bet}] ${n.type}: ${n.message}`))) : el('p', { class: 'muted' }, 'None')),
      el('div', { class: 'panel' }, el('h2', {}, 'Files (logToFile)'),
        Object.keys(r.files).length ? el('ul', {}, Object.entries(r.files).map(([name, text]) => el('li', {}, el('button', { onclick: () => download(name, text) }, `Download ${name}`), ` ${num(text.length)} characters`))) : el('p', { class: 'muted' }, 'None')),
      el('p', { class: 'muted' }, `fetch calls: ${num(r.fetch_calls)} (never reach the network) · hit sounds: ${num(r.hit_sounds)} · ${num(r.duration_ms)} ms, ${num(r.bets_per_second)} bets/s`),
    );
    // Colours come from the script: applied as a property, never as markup.
    for (const line of root.querySelectorAll('.log-line')) if (/^#[0-9a-fA-F]{6}$/.test(line.dataset.color)) line.style.color = line.dataset.color;
    requestAnimationFrame(() => chart(canvas, r.curve, (p) => p.bet, (p) => p.profit));
  }

  function renderMany(r) {
    const d = r.distribution;
    const canvas = el('canvas', { class: 'chart', id: 'histogram' });
    const profits = r.runs.map((x) => x.stats.profit);
    root.replaceChildren(
      el('div', { class: 'tiles', id: 'sim-distribution' },
        tile('Runs', num(r.runs.length)), tile('Mean profit', money(d.profit.mean)), tile('Median', money(d.profit.p50)),
        tile('p5 … p95', `${money(d.profit.p5)} … ${money(d.profit.p95)}`),
        tile('P(profit > 0)', `${(100 * d.p_profit_positive).toFixed(1)}%`, 'sim-p-positive'), tile('P(bust)', `${(100 * d.p_bust).toFixed(1)}%`, 'sim-p-bust')),
      el('div', { class: 'panel' }, el('h2', {}, 'Final profits'), canvas),
      el('div', { class: 'panel' }, el('table', {}, el('thead', {}, el('tr', {}, ['Client seed', 'Stop', 'Bets', 'Profit'].map((h) => el('th', {}, h)))),
        el('tbody', {}, r.runs.slice(0, 200).map((x) => el('tr', {}, el('td', { class: 'mono' }, x.seed.client_seed), el('td', {}, x.stop.reason), el('td', {}, num(x.stats.bets)), el('td', {}, money(x.stats.profit))))))),
    );
    requestAnimationFrame(() => histogram(canvas, profits));
  }

  async function load() {
    let s;
    try {
      s = await api(`/simulations/${id}`);
    } catch (e) {
      root.replaceChildren(el('div', { class: 'error' }, e.message), el('a', { href: '/simulate' }, 'Back to the simulator'));
      return;
    }
    $('#sim-title').textContent = `Simulation · ${s.status}`;
    const bar = $('#sim-progress');
    const running = s.status === 'running';
    bar.hidden = !running;
    $('#sim-cancel').hidden = !running;
    $('#sim-delete').hidden = running;
    if (running) {
      bar.firstElementChild.style.width = `${(100 * s.progress.bets) / Math.max(1, s.progress.of)}%`;
      root.replaceChildren(el('p', { id: 'sim-running' }, `Running: ${num(s.progress.bets)} of at most ${num(s.progress.of)} bets`));
      timer = setTimeout(load, 300);
      return;
    }
    if (!s.result) {
      root.replaceChildren(el('p', { class: 'muted' }, s.status === 'cancelled' ? 'Cancelled before it started.' : 'This simulation has no result (the server stopped while it ran).'));
      return;
    }
    if (s.result.runs) renderMany(s.result);
    else renderOne(s.result);
  }

  $('#sim-cancel').addEventListener('click', async () => {
    clearTimeout(timer);
    await api(`/simulations/${id}`, { method: 'DELETE' }).catch((e) => toast(e.message, 'error'));
    load();
  });
  $('#sim-delete').addEventListener('click', async () => {
    if (!window.confirm('Delete this simulation?')) return;
    await api(`/simulations/${id}`, { method: 'DELETE' }).then(() => window.location.assign('/simulate')).catch((e) => toast(e.message, 'error'));
  });

  window.sessionManager.init().then(load).catch((e) => toast(e.message, 'error'));
})();
