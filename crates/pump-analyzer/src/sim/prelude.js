// The world of a simulated Antebot script (SPEC §9): its variables, read-only stats and
// functions, and the betting loop. Runs in the sandbox before the script; `N` holds the natives
// (the engine, the run's PRNG, the capture of logs, notifications and files). The loop runs in
// JavaScript so that a bet crosses into Rust once, for the round's result.
(function (g, N) {
  'use strict';
  const TABLES = N.tables; // difficulty -> payout multipliers by pumps
  const WIN = N.win; // difficulty -> P(win) by rounds aimed for
  const POPS = { easy: 1, medium: 3, hard: 5, expert: 10 };
  const CLOCK_START = Date.UTC(2026, 0, 1);
  const CURVE_MAX = 1000;

  // ---- state --------------------------------------------------------------------------------
  let balance = 0;
  let vaulted = 0;
  let runBets = 0; // the run's own count of bets: max_bets, curve and the result's `bets`
  let nonce = 1;
  let stopReason = null;
  let stopMessage = null;
  let stopLine = null;
  let lastNonce = null;
  let fetchCalls = 0;
  let hitSounds = 0;
  let seed = null; // {server_seed, server_seed_hashed, client_seed}
  const handlers = { bet: null, stopped: null };
  let st; // the stats resetStats() zeroes

  function freshStats() {
    return {
      bets: 0, wins: 0, losses: 0, profit: 0, wagered: 0, paid: 0, highestProfit: 0, lowestProfit: 0,
      maxDrawdown: 0, highestBet: 0, highestLoss: 0, streak: 0, multipliers: [], winStreaks: [],
      lossStreaks: [], expected: 0,
    };
  }
  st = freshStats();

  /** Keeps the 10 largest values, largest first. */
  function top10(list, value) {
    if (list.length === 10 && value <= list[9]) return;
    let i = list.length;
    while (i > 0 && list[i - 1] < value) i--;
    list.splice(i, 0, value);
    if (list.length > 10) list.pop();
  }

  function withCurrent(finished, current) {
    const list = finished.slice();
    if (current > 0) top10(list, current);
    return list;
  }

  // ---- the curve: at most CURVE_MAX points, first and last bet included ---------------------
  let curve = [];
  let stride = 1;
  let nextSample = 1;
  function sample() {
    curve.push({ bet: runBets, profit: st.profit });
    if (curve.length >= CURVE_MAX) {
      curve = curve.filter((_, i) => i % 2 === 0);
      stride *= 2;
    }
    nextSample = curve[curve.length - 1].bet + stride;
  }

  // ---- the script's variables ---------------------------------------------------------------
  const define = (name, get) => Object.defineProperty(g, name, { get, set() {}, configurable: false, enumerable: true });
  g.game = 'pump';
  g.betSize = 0;
  g.difficulty = 'easy';
  g.rounds = 1;
  g.asyncMode = false;
  define('balance', () => balance);
  define('profit', () => st.profit);
  define('highestProfit', () => st.highestProfit);
  define('lowestProfit', () => st.lowestProfit);
  define('wagered', () => st.wagered);
  define('wins', () => st.wins);
  define('losses', () => st.losses);
  define('currentStreak', () => st.streak);
  define('rtp', () => (st.wagered > 0 ? (100 * st.paid) / st.wagered : 0));
  define('drawdown', () => st.highestProfit - st.profit);
  define('maxDrawdown', () => st.maxDrawdown);
  define('highestBet', () => st.highestBet);
  define('highestLoss', () => st.highestLoss);
  define('highestMultipliers', () => st.multipliers.slice());
  define('bestWinStreaks', () => withCurrent(st.winStreaks, st.streak));
  define('worstLossStreaks', () => withCurrent(st.lossStreaks, -st.streak));
  define('vaulted', () => vaulted);
  define('isSimulationMode', () => true);
  define('currency', () => 'fun');
  define('casino', () => 'STAKE');
  define('minBetSize', () => 0);
  define('isZeroBettingAllowed', () => true);

  // One lastBet object, updated in place before each callback.
  const state = { difficulty: 'easy', rounds: 1, roundTargetMultiplier: 0, roundResultMultiplier: 0 };
  const lastBet = {
    nonce: 0, game: 'pump', win: false, amount: 0, payoutMultiplier: 0, payout: 0, currency: 'fun', state,
    clientSeed: '', serverSeed: '', serverSeedHashed: '',
  };
  let betNumber = 0;
  Object.defineProperty(lastBet, 'id', { get: () => `sim-${betNumber}`, enumerable: true });
  Object.defineProperty(lastBet, 'dateTime', { get: () => new Date(CLOCK_START + betNumber * 1000).toISOString(), enumerable: true });
  let hasBet = false;
  define('lastBet', () => (hasBet ? lastBet : null));

  // ---- functions ----------------------------------------------------------------------------
  const text = (v) => (typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v));
  g.log = function (...args) {
    let color = null;
    if (args.length > 1 && typeof args[0] === 'string' && /^#[0-9a-fA-F]{6}$/.test(args[0])) color = args.shift();
    N.log(runBets, color, args.map(text).join(' '));
  };
  g.console = { log: g.log, info: g.log, warn: g.log, error: g.log, debug: g.log };
  g.clearConsole = function () {};
  g.notification = function (message, type = 'info') {
    N.notify(runBets, String(type), text(message));
  };
  g.playHitSound = function () {
    hitSounds++;
  };
  g.logToFile = function (name, content) {
    N.file(String(name), text(content));
  };
  g.chanceToMultiplier = (chance) => 99 / chance;
  g.getConversionRate = () => 1;
  g.getVipProgress = () => Promise.resolve({ flag: 'None', progress: 0, nextFlag: 'Bronze', wagerLeft: 0 });
  g.fetch = function () {
    fetchCalls++;
    return Promise.reject(new Error('network is disabled in simulation'));
  };
  g.shuffle = function (array) {
    for (let i = array.length - 1; i > 0; i--) {
      const j = Math.floor(N.random() * (i + 1));
      const t = array[i];
      array[i] = array[j];
      array[j] = t;
    }
    return array;
  };
  Math.random = N.random;
  Date.now = () => CLOCK_START + betNumber * 1000;
  g.resetStats = function () {
    st = freshStats();
  };
  function useSeed(server, client) {
    seed = { server_seed: server, server_seed_hashed: N.sha256(server), client_seed: client };
    N.setSeed(server, client);
    nonce = 1;
    lastBet.clientSeed = seed.client_seed;
    lastBet.serverSeed = seed.server_seed;
    lastBet.serverSeedHashed = seed.server_seed_hashed;
  }
  g.resetSeed = function (client) {
    useSeed(N.freshServerSeed(), client === undefined || client === null ? N.freshClientSeed() : String(client));
  };
  g.depositToVault = function (amount) {
    const a = Number(amount);
    if (!(a > 0) || a > balance) throw new Error(`depositToVault: the amount must be > 0 and at most the balance (${balance})`);
    balance -= a;
    vaulted += a;
  };
  g.setSimulationBalance = function (amount) {
    const a = Number(amount);
    if (!Number.isFinite(a) || a < 0) throw new Error('setSimulationBalance: the amount must be a number ≥ 0');
    balance = a;
  };
  g.setSimulationNonce = function (n) {
    const v = Number(n);
    if (!Number.isInteger(v) || v < 1) throw new Error('setSimulationNonce: the nonce must be a whole number ≥ 1');
    nonce = v;
  };
  g.engine = {
    onBetPlaced(cb) { handlers.bet = typeof cb === 'function' ? cb : null; },
    onBettingStopped(cb) { handlers.stopped = typeof cb === 'function' ? cb : null; },
    onGameRound() {},
    stop() { if (!stopReason) stopReason = 'stopped'; },
    pause() { if (!stopReason) stopReason = 'paused'; },
    start() {},
    resume() {},
  };

  // ---- errors -------------------------------------------------------------------------------
  /** The script line of an error: from its stack, the first frame in script.js. */
  function lineOf(e) {
    const stack = e && typeof e.stack === 'string' ? e.stack : '';
    const m = /script\.js:(\d+)/.exec(stack);
    if (m) return Number(m[1]);
    return e && typeof e.lineNumber === 'number' ? e.lineNumber : null;
  }
  function fail(message, line) {
    stopReason = 'script_error';
    stopMessage = message;
    stopLine = line;
  }
  N.scriptError = (e) => fail(e && e.message !== undefined ? String(e.message) : String(e), lineOf(e));

  // ---- the loop -----------------------------------------------------------------------------
  /** The run's starting point, set before the script's top level runs. */
  N.init = function (options) {
    balance = options.balance;
    useSeed(options.server_seed, options.client_seed);
    nonce = options.start_nonce;
  };

  N.run = async function (maxBets) {
    const pumpsOf = N.pumps;
    const busy = N.busy;
    let lastError = null;
    try {
      for (;;) {
        if (stopReason) break;
        if (runBets >= maxBets) {
          stopReason = 'max_bets';
          break;
        }
        if (g.game !== 'pump') {
          fail('game must be pump', null);
          break;
        }
        const size = Number(g.betSize);
        const diff = g.difficulty;
        const table = TABLES[diff];
        if (table === undefined) {
          fail(`difficulty must be easy, medium, hard or expert, got ${text(diff)}`, null);
          break;
        }
        const r = g.rounds;
        const most = 25 - POPS[diff];
        if (!Number.isInteger(r) || r < 1 || r > most) {
          fail(`rounds must be a whole number from 1 to ${most} on ${diff}, got ${text(r)}`, null);
          break;
        }
        if (!Number.isFinite(size) || size < 0) {
          fail(`betSize must be a number ≥ 0, got ${text(g.betSize)}`, null);
          break;
        }
        if (size > balance) {
          stopReason = 'insufficient_balance';
          stopMessage = `betSize ${size} is above the balance ${balance}`;
          break;
        }
        const pumps = pumpsOf(nonce, POPS[diff]);
        const win = pumps >= r;
        const multiplier = win ? table[r] : 0;
        const payout = size * multiplier;
        balance += payout - size;
        runBets++;
        betNumber = runBets;
        lastNonce = nonce;

        st.bets++;
        st.profit += payout - size;
        st.wagered += size;
        st.paid += payout;
        st.expected += size * (table[r] * WIN[diff][r] - 1);
        if (win) {
          st.wins++;
          if (st.streak < 0) top10(st.lossStreaks, -st.streak);
          st.streak = st.streak > 0 ? st.streak + 1 : 1;
          top10(st.multipliers, multiplier);
        } else {
          st.losses++;
          if (st.streak > 0) top10(st.winStreaks, st.streak);
          st.streak = st.streak < 0 ? st.streak - 1 : -1;
          if (size > st.highestLoss) st.highestLoss = size;
        }
        if (st.profit > st.highestProfit) st.highestProfit = st.profit;
        if (st.profit < st.lowestProfit) st.lowestProfit = st.profit;
        if (st.highestProfit - st.profit > st.maxDrawdown) st.maxDrawdown = st.highestProfit - st.profit;
        if (size > st.highestBet) st.highestBet = size;
        if (runBets === nextSample) sample();

        lastBet.nonce = nonce;
        lastBet.win = win;
        lastBet.amount = size;
        lastBet.payoutMultiplier = multiplier;
        lastBet.payout = payout;
        state.difficulty = diff;
        state.rounds = r;
        state.roundTargetMultiplier = table[r];
        state.roundResultMultiplier = table[pumps];
        hasBet = true;
        nonce++;
        if ((runBets & 4095) === 0) N.progress(runBets);

        // The callback's promise, and any promise it started, settle before the next bet. One
        // native call tells whether anything is left to wait for: an async callback that never
        // awaited returns a settled promise and needs no turn of the job queue (a rejected one
        // throws from the call, as `await` would).
        const answer = handlers.bet === null ? undefined : handlers.bet(lastBet);
        if (busy(answer)) {
          if (answer !== undefined && answer !== null && typeof answer.then === 'function') await answer;
          while (busy(undefined)) await null;
        }
      }
    } catch (e) {
      lastError = e;
      fail(e && e.message !== undefined ? String(e.message) : String(e), lineOf(e));
    }
    if (handlers.stopped !== null) {
      try {
        const answer = handlers.stopped(stopReason === 'stopped' || stopReason === 'paused', lastError);
        if (answer !== undefined && answer !== null && typeof answer.then === 'function') await answer;
      } catch (e) {
        if (stopReason !== 'script_error') fail(e && e.message !== undefined ? String(e.message) : String(e), lineOf(e));
      }
    }
  };

  /** The run's result as JSON (`reason` overrides when the run was interrupted from outside). */
  N.result = function (reason) {
    if (reason) stopReason = reason;
    if (runBets > 0 && (curve.length === 0 || curve[curve.length - 1].bet !== runBets)) {
      curve.push({ bet: runBets, profit: st.profit });
      if (curve.length > CURVE_MAX) curve.splice(curve.length - 2, 1);
    }
    const stop = { reason: stopReason || 'stopped', nonce: lastNonce };
    if (stopMessage !== null) stop.message = stopMessage;
    if (stopLine !== null) stop.line = stopLine;
    return JSON.stringify({
      seed: { server_seed: seed ? seed.server_seed : null, server_seed_hashed: seed ? seed.server_seed_hashed : null, client_seed: seed ? seed.client_seed : null },
      stop,
      stats: {
        bets: runBets, wins: st.wins, losses: st.losses, wagered: st.wagered, profit: st.profit, balance,
        highest_profit: st.highestProfit, lowest_profit: st.lowestProfit, max_drawdown: st.maxDrawdown,
        highest_bet: st.highestBet, highest_loss: st.highestLoss,
        best_win_streak: withCurrent(st.winStreaks, st.streak)[0] || 0,
        worst_loss_streak: withCurrent(st.lossStreaks, -st.streak)[0] || 0,
        highest_multipliers: st.multipliers.slice(), rtp: st.wagered > 0 ? (100 * st.paid) / st.wagered : 0, vaulted,
      },
      expected_profit: st.expected,
      curve,
      fetch_calls: fetchCalls,
      hit_sounds: hitSounds,
    });
  };
})(globalThis, globalThis.__natives);
delete globalThis.__natives;
