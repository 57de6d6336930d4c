/*
 * Pump Analyzer session client: the `window.sessionManager` API of the session guide (seed 004).
 *
 *   await sessionManager.init();
 *   sessionManager.getCSRFToken();  sessionManager.getSessionInfo();
 *   await sessionManager.extendSession();  await sessionManager.clearSession();
 *   await sessionManager.fetch(url, options);   // adds X-CSRF-Token to non-GET requests
 *   sessionManager.setAutoExtend(true);  sessionManager.setWarningThreshold(300);
 *
 * Events on `window`: `sessionWarning` (detail.remainingSeconds) and `sessionExpired`
 * (detail.message). Status checks use GET /api/session/info, which the server does not count as
 * activity, so warnings and expiry really happen.
 */
(function () {
  'use strict';

  const SAFE_METHODS = ['GET', 'HEAD', 'OPTIONS'];

  class SessionManagerClient {
    constructor() {
      this.csrfToken = null;
      this.sessionInfo = null;
      this.autoExtend = false;
      this.warningThreshold = 300;
      this.warned = false;
      this.expired = false;
      this.timer = null;
      this.initPromise = null;
      this.infoReceivedAt = 0;
    }

    /** Fetches the CSRF token and the session status, then watches the session. */
    init() {
      if (!this.initPromise) {
        this.initPromise = (async () => {
          await this.refreshToken();
          await this.checkSession();
          return this;
        })().catch((error) => {
          this.initPromise = null;
          throw error;
        });
      }
      return this.initPromise;
    }

    getCSRFToken() {
      return this.csrfToken;
    }

    /** The last known status, with `remaining_seconds` counted down since it was fetched. */
    getSessionInfo() {
      if (!this.sessionInfo) return null;
      const elapsed = Math.floor((Date.now() - this.infoReceivedAt) / 1000);
      return Object.assign({}, this.sessionInfo, {
        remaining_seconds: Math.max(0, this.sessionInfo.remaining_seconds - elapsed),
      });
    }

    setAutoExtend(enabled) {
      this.autoExtend = Boolean(enabled);
      if (this.autoExtend && this.sessionInfo) this.schedule(0);
    }

    setWarningThreshold(seconds) {
      const value = Number(seconds);
      if (Number.isFinite(value) && value >= 0) {
        this.warningThreshold = value;
        this.warned = false;
        if (this.sessionInfo) this.schedule(0);
      }
    }

    async refreshToken() {
      const response = await window.fetch('/api/session/csrf-token', { credentials: 'same-origin' });
      if (response.status === 401) {
        this.onExpired(await this.messageOf(response, 'Your session has expired'));
        return null;
      }
      const body = await response.json();
      this.csrfToken = body.csrf_token || null;
      this.expired = false;
      return this.csrfToken;
    }

    async extendSession() {
      const response = await this.fetch('/api/session/extend', { method: 'POST' });
      if (!response.ok) return null;
      const body = await response.json();
      this.setInfo(body.session);
      this.warned = false;
      this.schedule();
      return body.session;
    }

    async clearSession() {
      const response = await this.fetch('/api/session/clear', { method: 'POST' });
      this.stop();
      this.csrfToken = null;
      this.sessionInfo = null;
      return response.ok;
    }

    /**
     * `fetch` with the session: same-origin cookies, `X-CSRF-Token` on non-GET requests, one retry
     * with a fresh token after a 403 CSRF_INVALID, and `sessionExpired` on a 401.
     */
    async fetch(url, options = {}, retried = false) {
      const method = (options.method || 'GET').toUpperCase();
      const headers = new Headers(options.headers || {});
      if (!SAFE_METHODS.includes(method)) {
        if (!this.csrfToken) await this.refreshToken();
        if (this.csrfToken) headers.set('X-CSRF-Token', this.csrfToken);
      }
      const response = await window.fetch(url, Object.assign({}, options, { headers, credentials: 'same-origin' }));
      if (response.status === 403 && !retried) {
        const code = await this.codeOf(response);
        if (code === 'CSRF_INVALID') {
          await this.refreshToken();
          return this.fetch(url, options, true);
        }
      }
      if (response.status === 401) {
        const code = await this.codeOf(response);
        if (code === 'SESSION_EXPIRED' || code === 'SESSION_REQUIRED') {
          this.onExpired(await this.messageOf(response, 'Your session has expired'));
        }
      }
      return response;
    }

    // ---- internals -------------------------------------------------------------------------

    async codeOf(response) {
      try {
        return (await response.clone().json()).code || null;
      } catch (_) {
        return null;
      }
    }

    async messageOf(response, fallback) {
      try {
        return (await response.clone().json()).message || fallback;
      } catch (_) {
        return fallback;
      }
    }

    setInfo(info) {
      this.sessionInfo = info;
      this.infoReceivedAt = Date.now();
    }

    async checkSession() {
      let response;
      try {
        response = await window.fetch('/api/session/info', { credentials: 'same-origin' });
      } catch (_) {
        this.schedule(5000); // server unreachable: try again shortly
        return null;
      }
      if (response.status === 401) {
        this.onExpired(await this.messageOf(response, 'Your session has expired'));
        return null;
      }
      const body = await response.json();
      this.setInfo(body.session);
      const remaining = body.session.remaining_seconds;
      if (!body.session.is_active || remaining <= 0) {
        this.onExpired('Your session has expired');
        return body.session;
      }
      if (remaining <= this.warningThreshold) {
        if (this.autoExtend) {
          await this.extendSession();
          return this.sessionInfo;
        }
        if (!this.warned) {
          this.warned = true;
          window.dispatchEvent(new CustomEvent('sessionWarning', { detail: { remainingSeconds: remaining } }));
        }
      } else {
        this.warned = false;
      }
      this.schedule();
      return body.session;
    }

    /** Next check: soon when close to the warning or to expiry, rarely otherwise. */
    schedule(delay) {
      this.stop();
      if (this.expired) return;
      if (delay === undefined) {
        const remaining = this.sessionInfo ? this.sessionInfo.remaining_seconds : 60;
        const untilWarning = remaining - this.warningThreshold;
        const seconds = untilWarning > 0 ? untilWarning / 2 : remaining / 3;
        delay = Math.min(30000, Math.max(500, seconds * 1000));
      }
      this.timer = window.setTimeout(() => this.checkSession(), delay);
    }

    stop() {
      if (this.timer) window.clearTimeout(this.timer);
      this.timer = null;
    }

    onExpired(message) {
      if (this.expired) return;
      this.expired = true;
      this.stop();
      this.csrfToken = null;
      window.dispatchEvent(new CustomEvent('sessionExpired', { detail: { message } }));
    }
  }

  window.SessionManagerClient = SessionManagerClient;
  window.sessionManager = new SessionManagerClient();
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', () => window.sessionManager.init().catch(() => {}));
  } else {
    window.sessionManager.init().catch(() => {});
  }
})();
