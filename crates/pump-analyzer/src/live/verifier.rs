//! Verification of recorded bets once their server seed is revealed (SPEC §3.3).
//!
//! Bets stored before the reveal are replayed here in chunks: each chunk is read on a read
//! connection (the next one while this one is recomputed), recomputed by the engine on the
//! blocking pool, and recorded by one short writer job while the next chunk is read, so ingest
//! and other requests interleave with a long verification instead of waiting for it. Bets
//! arriving after the reveal are verified by the writer as they are stored.

use pump_engine::RoundDeriver;
use pump_engine::tables::cents;
use uuid::Uuid;

use crate::store::model::BetCheck;
use crate::store::{Store, StoreError};

/// Chunks recorded at the same time: on PostgreSQL each on a connection of its own, in parallel.
const RECORDING: usize = 4;

/// Verifies every unchecked bet of one stream; returns how many were checked.
pub async fn verify_stream(
    store: Store,
    pk: i64,
    stream_id: Uuid,
    server_seed: String,
    client_seed: String,
) -> Result<u64, StoreError> {
    let mut deriver = Some(RoundDeriver::new(&server_seed, &client_seed));
    let mut total = 0u64;
    let chunk = store.verification_chunk();
    // Earlier chunks' results being recorded while this chunk is read and recomputed.
    let mut recording: std::collections::VecDeque<tokio::task::JoinHandle<Result<(), StoreError>>> =
        std::collections::VecDeque::new();
    let read = |after: (i64, i64)| {
        let store = store.clone();
        tokio::spawn(async move { store.unverified_bets(pk, after, chunk).await })
    };
    // The next chunk is read while this one is recomputed: on PostgreSQL the reads are round
    // trips, one after the other, and they are what a verification waits for.
    let mut next = Some(read((i64::MIN, i64::MIN)));
    while let Some(reading) = next.take() {
        let bets = reading.await.map_err(|e| StoreError::Internal(format!("reading bets to verify failed: {e}")))??;
        let Some(last) = bets.last() else { break };
        if bets.len() as i64 == chunk {
            next = Some(read((last.nonce, last.id)));
        }
        let mut engine = deriver.take().unwrap_or_else(|| RoundDeriver::new(&server_seed, &client_seed));
        let (engine, results) = tokio::task::spawn_blocking(move || {
            let results: Vec<BetCheck> = bets
                .iter()
                .filter_map(|bet| {
                    let expected = engine.result(u64::try_from(bet.nonce).ok()?, bet.difficulty).max_multiplier;
                    let matched = cents(expected) == cents(bet.round_result);
                    Some(BetCheck { bet_id: bet.id, nonce: bet.nonce, expected_multiplier: expected, matched })
                })
                .collect();
            (engine, results)
        })
        .await
        .map_err(|e| StoreError::Internal(format!("verification task failed: {e}")))?;
        deriver = Some(engine);
        total += results.len() as u64;
        if recording.len() >= RECORDING
            && let Some(oldest) = recording.pop_front()
        {
            finish(oldest).await?;
        }
        let store = store.clone();
        recording.push_back(tokio::spawn(async move { store.record_verification(pk, stream_id, results).await }));
    }
    for rest in recording {
        finish(rest).await?;
    }
    Ok(total)
}

async fn finish(recording: tokio::task::JoinHandle<Result<(), StoreError>>) -> Result<(), StoreError> {
    recording.await.map_err(|e| StoreError::Internal(format!("recording verification results failed: {e}")))?
}

/// Resumes verification left unfinished by a previous run of the server.
pub async fn resume_all(store: Store) {
    match store.streams_to_verify().await {
        Ok(streams) => {
            for s in streams {
                if let Err(e) = verify_stream(store.clone(), s.pk, s.id, s.server_seed, s.client_seed).await {
                    tracing::warn!(stream = %s.id, error = %e, "seed verification could not finish; it resumes at next start");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot list streams awaiting seed verification"),
    }
}
