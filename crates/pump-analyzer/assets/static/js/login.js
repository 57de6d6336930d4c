document.getElementById('login').addEventListener('submit', async (event) => {
  event.preventDefault();
  const error = document.getElementById('error');
  error.textContent = '';
  await window.sessionManager.init();
  const response = await window.sessionManager.fetch('/api/session/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ password: document.getElementById('password').value }),
  });
  if (response.ok) {
    window.location.assign('/');
  } else {
    const body = await response.json().catch(() => ({}));
    error.textContent = body.message || 'Login failed';
  }
});
