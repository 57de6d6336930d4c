//! Live events from every instance: one LISTEN connection per instance receives the `NOTIFY`s
//! that ingest and the other writers send inside their transactions, and republishes them on
//! the in-process hub.
//!
//! Bets are not carried in notifications. Transactions commit out of bet-id order and SSE
//! clients keep only the highest id they saw, so bets are published in id order once the
//! bet-id horizon passes them (`horizon.rs`): a note says bets were added, the listener settles
//! the horizon and reads the bets up to it from the database, once for every client of the
//! instance. Rounds and new streams are published as they arrive.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::NoTls;
use uuid::Uuid;

use super::horizon::Probe;
use super::{CHANNEL, reads, tls};
use crate::store::StoreError;
use crate::store::hub::{Hub, LiveEvent};
use crate::store::model::BetRecord;

/// Drives a LISTEN connection and hands each notification's payload over the channel.
fn pump_notifications<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
) -> (mpsc::UnboundedReceiver<String>, tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let pump = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_string()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    (rx, pump)
}

/// What ingest notifies besides whole live events.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub(super) enum Note {
    /// Bets were committed.
    Bets,
    /// New rounds of one stream, as (nonce, round result).
    Rounds { stream_id: Uuid, rounds: Vec<(i64, f64)> },
}

/// Least time between the starts of two settlings: under steady ingest one settling then covers
/// the notes of several groups, and the listener's queries stay few.
const SETTLE_SPACING: std::time::Duration = std::time::Duration::from_millis(5);

/// Bets read per query while publishing.
const PAGE: i64 = 1000;

/// A settled horizon and the bets read up to it.
type Settled = Result<(i64, Vec<BetRecord>), StoreError>;

/// Settles the horizon and, when anyone listens, reads the bets from `after` up to it.
async fn settle(
    client: Arc<tokio_postgres::Client>,
    probe: Arc<Probe>,
    read: tokio_postgres::Statement,
    after: i64,
    listening: bool,
) -> Settled {
    let horizon = probe.settled(&client).await?;
    let mut bets = Vec::new();
    let mut from = after;
    while listening && from < horizon {
        let page = reads::bets(client.query(&read, &[&from, &horizon, &PAGE]).await?)?;
        let Some(last) = page.last() else { break };
        from = last.id;
        let full = page.len() as i64 == PAGE;
        bets.extend(page);
        if !full {
            break;
        }
    }
    Ok((horizon, bets))
}

/// Receives this database's live events and republishes them on the local hub; reconnects by
/// itself when the connection is lost. Ends when the store is dropped.
pub(super) async fn listen(config: tokio_postgres::Config, tls: tls::Tls, hub: Hub, mut alive: watch::Receiver<()>) {
    // Warn once per outage, not once per reconnection attempt.
    let warned = std::sync::atomic::AtomicBool::new(false);
    loop {
        let session = async {
            let (client, mut rx, pump) = match &tls {
                tls::Tls::Off => {
                    let (client, connection) = config.connect(NoTls).await?;
                    let (rx, pump) = pump_notifications(connection);
                    (client, rx, pump)
                }
                tls::Tls::On(connector) => {
                    let (client, connection) = config.connect(connector.clone()).await?;
                    let (rx, pump) = pump_notifications(connection);
                    (client, rx, pump)
                }
            };
            let client = Arc::new(client);
            client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
            let probe = Arc::new(Probe::prepare(&client).await?);
            let read = client.prepare(&reads::bets_between_sql()).await?;
            // Bets up to here are in the database for clients that connect or resync.
            let mut horizon = probe.settled(&client).await?;
            if warned.swap(false, std::sync::atomic::Ordering::Relaxed) {
                tracing::info!("live events from PostgreSQL resumed");
            }
            // Whatever was committed while nobody listened is in the database: SSE clients
            // re-read from their last event id.
            hub.publish(LiveEvent::Resync);
            let mut settling: Option<oneshot::Receiver<Settled>> = None;
            // Bets notes received, those the settling in progress covers (received before it
            // began), and those covered by a finished one.
            let (mut notes, mut covering, mut covered) = (0u64, 0u64, 0u64);
            // Events that came after a bets note not yet covered, with that note's number: they
            // follow those bets out.
            let mut held: std::collections::VecDeque<(u64, LiveEvent)> = std::collections::VecDeque::new();
            let mut last_settle = tokio::time::Instant::now();
            loop {
                let due = last_settle + SETTLE_SPACING;
                if notes > covered && settling.is_none() && tokio::time::Instant::now() >= due {
                    last_settle = tokio::time::Instant::now();
                    covering = notes;
                    let (done, answer) = oneshot::channel();
                    let work = settle(client.clone(), probe.clone(), read.clone(), horizon, hub.has_subscribers());
                    tokio::spawn(async move { done.send(work.await) });
                    settling = Some(answer);
                }
                tokio::select! {
                    _ = tokio::time::sleep_until(due), if notes > covered && settling.is_none() => {}
                    note = rx.recv() => match note {
                        None => break,
                        Some(payload) => {
                            let events = match serde_json::from_str::<Note>(&payload) {
                                Ok(Note::Bets) => {
                                    notes += 1;
                                    Vec::new()
                                }
                                Ok(Note::Rounds { stream_id, rounds }) => rounds
                                    .into_iter()
                                    .map(|(nonce, round_result)| LiveEvent::Round { stream_id, nonce, round_result })
                                    .collect(),
                                Err(_) => match serde_json::from_str::<LiveEvent>(&payload) {
                                    Ok(event) => vec![event],
                                    Err(e) => {
                                        tracing::warn!(error = %e, "ignoring an unreadable live event");
                                        Vec::new()
                                    }
                                },
                            };
                            for event in events {
                                if notes > covered || !held.is_empty() {
                                    held.push_back((notes, event));
                                } else {
                                    hub.publish(event);
                                }
                            }
                        }
                    },
                    answer = async { settling.as_mut().expect("guarded by the condition").await }, if settling.is_some() => {
                        settling = None;
                        match answer {
                            Ok(Ok((settled, bets))) => {
                                horizon = horizon.max(settled);
                                covered = covering;
                                for bet in bets {
                                    hub.publish(LiveEvent::Bet(Box::new(bet)));
                                }
                                while held.front().is_some_and(|(note, _)| *note <= covered) {
                                    if let Some((_, event)) = held.pop_front() {
                                        hub.publish(event);
                                    }
                                }
                            }
                            Ok(Err(e)) => return Err(e),
                            Err(_) => return Err(StoreError::Internal("the horizon task stopped".into())),
                        }
                    }
                }
            }
            drop(client);
            match pump.await {
                Ok(Err(e)) => Err(e.into()),
                _ => Ok::<(), StoreError>(()),
            }
        };
        tokio::select! {
            result = session => {
                if let Err(e) = result && !warned.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    tracing::warn!(error = %e, "live events from PostgreSQL interrupted; reconnecting");
                }
            }
            _ = alive.changed() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = alive.changed() => return,
        }
    }
}
