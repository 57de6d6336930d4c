// Pump Analyzer live feed for Antebot (Pump).
const PUMP_URL = 'http://127.0.0.1:8000/live/ingest';
const PUMP_TOKEN = '';              // the INGEST_TOKEN of the server, or '' when ingest is open
const FULL_BET_ABOVE = 164.72;      // rounds at or above this multiplier are sent as full bets
const FLUSH_MS = 1000;              // send queued rounds at most once per second...
const FLUSH_ITEMS = 50;             // ...or as soon as this many are waiting

let queue = [];
let lastFlush = 0;

async function flush() {
  if (queue.length === 0) return;
  const items = queue;
  queue = [];
  lastFlush = Date.now();
  const headers = { 'Content-Type': 'application/json' };
  if (PUMP_TOKEN) headers['X-Ingest-Token'] = PUMP_TOKEN;
  try {
    const res = await fetch(PUMP_URL, { method: 'POST', headers, body: JSON.stringify({ bets: items }) });
    if (res.status === 429 || res.status >= 500) {
      queue = items.concat(queue);  // keep them; the next flush retries (ingest is idempotent)
    } else if (!res.ok) {
      log('Pump Analyzer refused a batch: ' + res.status + ' ' + (await res.text()));
    }
  } catch (e) {
    queue = items.concat(queue);
    log('Pump Analyzer unreachable: ' + e);
  }
}

engine.onBetPlaced(async (lastBet) => {
  if (isSimulationMode) return;     // a simulation (Antebot's or Pump Analyzer's) has nothing to send
  const state = lastBet.state || {};
  const roundResult = state.roundResultMultiplier;
  const round = {
    nonce: lastBet.nonce,
    roundResult,
    clientSeed: lastBet.clientSeed,
    serverSeedHashed: lastBet.serverSeedHashed,
  };
  if (roundResult >= FULL_BET_ABOVE) {
    queue.push({
      type: 'bet',
      id: String(lastBet.id),
      amount: lastBet.amount,
      payout: lastBet.payout,
      difficulty: state.difficulty,
      roundTarget: state.roundTargetMultiplier,
      dateTime: lastBet.dateTime,
      ...round,
    });
  } else {
    queue.push({ type: 'heartbeat', ...round });
  }
  if (roundResult >= FULL_BET_ABOVE || queue.length >= FLUSH_ITEMS || Date.now() - lastFlush >= FLUSH_MS) {
    await flush();
  }
});

// When betting stops (stop button, stop condition, error), send what is still queued.
engine.onBettingStopped(async () => {
  await flush();
});
