/* Verify one nonce and draw the 25-tile board with the pop positions marked. */
(function () {
  'use strict';
  const { api, el, $, mult } = window.App;
  const POPS = { easy: 1, medium: 3, hard: 5, expert: 10 };

  function board(result, difficulty) {
    const pops = result.permutation.slice(0, POPS[difficulty]);
    const cells = [];
    for (let position = 1; position <= 25; position += 1) {
      const pop = pops.includes(position);
      const order = result.permutation.indexOf(position) + 1;
      const classes = ['cell', pop ? 'pop' : position < result.pop_point ? 'safe' : '', position === result.pop_point ? 'first-pop' : ''].join(' ').trim();
      cells.push(el('div', { class: classes, dataset: { position }, title: `position ${position}, drawn ${order}${pop ? ' — pop' : ''}` }, position, el('small', {}, `#${order}`)));
    }
    return el('div', { class: 'board', id: 'board' }, cells);
  }

  $('#verify-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const out = $('#verify-result');
    $('#verify-error').textContent = '';
    const q = new URLSearchParams({
      server_seed: $('#server_seed').value.trim(), client_seed: $('#client_seed').value.trim(),
      nonce: $('#nonce').value, difficulty: $('#difficulty').value,
    });
    try {
      const r = await api(`/verify?${q}`);
      out.replaceChildren(
        el('div', { class: 'tiles' },
          el('div', { class: 'tile' }, el('div', { class: 'label' }, 'Max multiplier'), el('div', { class: 'value', id: 'result-multiplier' }, mult(r.max_multiplier))),
          el('div', { class: 'tile' }, el('div', { class: 'label' }, 'Max pumps'), el('div', { class: 'value' }, r.max_pumps)),
          el('div', { class: 'tile' }, el('div', { class: 'label' }, 'Pop point'), el('div', { class: 'value' }, r.pop_point))),
        board(r, $('#difficulty').value),
        el('p', { class: 'muted' }, `Permutation: ${r.permutation.join(' ')} — the first ${POPS[$('#difficulty').value]} positions drawn are the pops.`),
      );
      out.hidden = false;
    } catch (e) {
      $('#verify-error').replaceChildren(el('div', { class: 'error' }, e.message));
      out.hidden = true;
    }
  });
})();
