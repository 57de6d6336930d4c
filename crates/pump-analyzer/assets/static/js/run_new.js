/* New-run form: client-side validation, live progress while the server scans, cancel. */
(function () {
  'use strict';
  const { api, $, toast } = window.App;
  const form = $('#run-form');
  let runId = null;
  let poller = null;

  // "Duplicate with a new range" from a run's page pre-fills the form.
  const prefill = new URLSearchParams(window.location.search);
  for (const name of ['server_seed', 'client_seed', 'difficulty', 'start', 'end', 'targets']) {
    if (prefill.has(name)) $(`#${name}`).value = prefill.get(name);
  }

  function setError(field, message) {
    const node = form.querySelector(`[data-for="${field}"]`);
    if (node) node.textContent = message || '';
  }

  function validate() {
    for (const node of form.querySelectorAll('.field-error')) node.textContent = '';
    let ok = true;
    const fail = (field, message) => { setError(field, message); ok = false; };
    const server = $('#server_seed').value.trim();
    const client = $('#client_seed').value.trim();
    const start = Number($('#start').value);
    const end = Number($('#end').value);
    const targets = $('#targets').value.split(',').map((t) => t.trim()).filter(Boolean).map(Number);
    if (!server) fail('server_seed', 'Required');
    if (!client) fail('client_seed', 'Required');
    if (!Number.isInteger(start) || start < 1) fail('start', 'A whole number ≥ 1');
    if (!Number.isInteger(end) || end < 1) fail('end', 'A whole number ≥ 1');
    else if (Number.isInteger(start) && end < start) fail('end', 'Must be ≥ the first nonce');
    if (!targets.length) fail('targets', 'At least one multiplier');
    else if (targets.some((t) => !Number.isFinite(t) || t < 1)) fail('targets', 'Multipliers are numbers ≥ 1');
    return ok ? { server_seed: server, client_seed: client, start, end, difficulty: $('#difficulty').value, targets } : null;
  }

  function running(on) {
    $('#start-run').disabled = on;
    $('#cancel-run').hidden = !on;
    $('#progress').hidden = !on;
  }

  async function poll() {
    try {
      const p = await api(`/runs/${runId}/progress`);
      $('#progress > div').style.width = `${(p.progress * 100).toFixed(1)}%`;
      $('#run-status').textContent = `${p.status}: ${(p.progress * 100).toFixed(1)}% · ${Number(p.nonces_per_second || 0).toLocaleString()} nonces/s`;
    } catch (_) {
      // Not registered yet, or already finished.
    }
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    $('#run-error').textContent = '';
    const body = validate();
    if (!body) return;
    runId = crypto.randomUUID ? crypto.randomUUID() : null;
    if (runId) body.id = runId;
    running(true);
    $('#run-status').textContent = 'starting…';
    if (runId) poller = setInterval(poll, 300);
    try {
      const run = await api('/runs', { method: 'POST', json: body });
      window.location.assign(`/runs/${run.id}`);
    } catch (e) {
      if (e.body && e.body.error && e.body.error.errors) {
        for (const item of e.body.error.errors) setError(item.field, item.message);
      }
      $('#run-error').textContent = e.message;
      $('#run-status').textContent = '';
    } finally {
      clearInterval(poller);
      running(false);
    }
  });

  $('#cancel-run').addEventListener('click', async () => {
    if (!runId) return;
    try {
      await api(`/runs/${runId}/cancel`, { method: 'POST' });
      $('#run-status').textContent = 'cancelling…';
    } catch (e) {
      toast(e.message, 'error');
    }
  });
})();
