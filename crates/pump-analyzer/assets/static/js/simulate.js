/* Simulator form: the script (pre-filled with the README's Antebot script), seeds or random,
 * balance, max bets and runs; starts a simulation and opens its page. */
(function () {
  'use strict';
  const { api, el, $, num, relative, toast } = window.App;
  const form = $('#sim-form');
  const random = $('#random-seeds');
  random.addEventListener('change', () => {
    $('#server_seed').disabled = random.checked;
    $('#client_seed').disabled = random.checked;
  });

  function setError(field, message) {
    const node = form.querySelector(`[data-for="${field}"]`);
    if (node) node.textContent = message || '';
  }

  async function prefill() {
    if ($('#script').value) return;
    $('#script').value = await fetch('/static/antebot/pump-feed.js').then((r) => r.text()).catch(() => '');
  }

  async function loadList() {
    const list = await api('/simulations?limit=20');
    $('#simulations tbody').replaceChildren(...list.simulations.map((s) => el('tr', { class: 'clickable', dataset: { id: s.id }, onclick: () => window.location.assign(`/simulations/${s.id}`) },
      el('td', { title: s.created_at }, relative(s.created_at)), el('td', {}, s.status), el('td', {}, num(s.runs)),
      el('td', {}, num(s.max_bets)), el('td', {}, `${num(s.progress.bets)} / ${num(s.progress.of)}`))));
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    for (const node of form.querySelectorAll('.field-error')) node.textContent = '';
    $('#sim-error').replaceChildren();
    const body = { script: $('#script').value, balance: Number($('#balance').value), max_bets: Number($('#max_bets').value), runs: Number($('#runs').value) };
    if (!random.checked) {
      body.server_seed = $('#server_seed').value.trim();
      body.client_seed = $('#client_seed').value.trim();
    }
    $('#start-sim').disabled = true;
    try {
      const started = await api('/simulations', { method: 'POST', json: body });
      window.location.assign(`/simulations/${started.id}`);
    } catch (e) {
      $('#start-sim').disabled = false;
      const field = e.body && e.body.error && e.body.error.field;
      if (field && form.querySelector(`[data-for="${field}"]`)) setError(field, e.message);
      else $('#sim-error').replaceChildren(el('div', { class: 'error', role: 'alert' }, e.message));
    }
  });

  window.sessionManager.init().then(() => Promise.all([prefill(), loadList()])).catch((e) => toast(e.message, 'error'));
})();
