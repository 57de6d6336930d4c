//! Live events from every instance: one LISTEN connection per instance receives the `NOTIFY`s
//! that ingest and the other writers send inside their transactions, and republishes them on
//! the in-process hub.
//!
//! Bet events are held back until the bet-id horizon passes them (`horizon.rs`) and then
//! published in id order, because transactions commit out of id order and SSE clients keep only
//! the highest id they saw. After the horizon is settled, a marker is sent to a channel of this
//! connection's own: notifications arrive in commit order, so once the marker is back, every
//! event of the transactions the horizon waited for has arrived too.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::NoTls;
use uuid::Uuid;

use super::horizon::Probe;
use super::{CHANNEL, tls};
use crate::store::StoreError;
use crate::store::hub::{Hub, LiveEvent};

/// A notification: its channel and payload.
type Note = (String, String);

/// Drives a LISTEN connection and hands each notification over the channel.
fn pump_notifications<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
) -> (mpsc::UnboundedReceiver<Note>, tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>)
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
                    if tx.send((n.channel().to_string(), n.payload().to_string())).is_err() {
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

/// Publishes events, holding bets back until the horizon passes them.
struct Release {
    hub: Hub,
    horizon: i64,
    pending: BTreeMap<i64, LiveEvent>,
}

impl Release {
    fn accept(&mut self, event: LiveEvent) {
        match event {
            LiveEvent::Bet(bet) if bet.id > self.horizon => {
                self.pending.insert(bet.id, LiveEvent::Bet(bet));
            }
            LiveEvent::StreamDeleted { stream_id } => {
                self.pending.retain(|_, e| e.stream_id() != Some(stream_id));
                self.hub.publish(LiveEvent::StreamDeleted { stream_id });
            }
            other => self.hub.publish(other),
        }
    }

    /// Every bet up to `to` is final: publishes the held ones, in id order.
    fn advance(&mut self, to: i64) {
        self.horizon = self.horizon.max(to);
        let later = self.pending.split_off(&(self.horizon + 1));
        for (_, event) in std::mem::replace(&mut self.pending, later) {
            self.hub.publish(event);
        }
    }
}

/// Settles the horizon, then sends `token` to `marker`; answers the horizon.
async fn settle(
    client: Arc<tokio_postgres::Client>,
    probe: Arc<Probe>,
    marker: String,
    token: String,
) -> Result<i64, StoreError> {
    let horizon = probe.settled(&client).await?;
    client.execute("SELECT pg_notify($1, $2)", &[&marker, &token]).await?;
    Ok(horizon)
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
            let marker = format!("pump_horizon_{}", Uuid::new_v4().simple());
            client.batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {marker}")).await?;
            let probe = Arc::new(Probe::prepare(&client).await?);
            if warned.swap(false, std::sync::atomic::Ordering::Relaxed) {
                tracing::info!("live events from PostgreSQL resumed");
            }
            // Whatever was committed while nobody listened is in the database: SSE clients
            // re-read from their last event id.
            hub.publish(LiveEvent::Resync);
            let mut release = Release { hub: hub.clone(), horizon: 0, pending: BTreeMap::new() };
            // The settling in progress: its answer, and the marker (which may arrive before the
            // answer does).
            let mut settling: Option<oneshot::Receiver<Result<i64, StoreError>>> = None;
            let mut settled: Option<i64> = None;
            let mut marked = false;
            let mut tokens = 0u64;
            loop {
                if let Some(horizon) = settled
                    && marked
                {
                    release.advance(horizon);
                    (settled, marked) = (None, false);
                }
                let idle = settling.is_none() && settled.is_none() && !marked;
                if idle && !release.pending.is_empty() {
                    tokens += 1;
                    let (done, answer) = oneshot::channel();
                    let work = settle(client.clone(), probe.clone(), marker.clone(), tokens.to_string());
                    tokio::spawn(async move { done.send(work.await) });
                    settling = Some(answer);
                }
                tokio::select! {
                    note = rx.recv() => match note {
                        None => break,
                        Some((channel, token)) if channel == marker => marked = token == tokens.to_string(),
                        Some((_, payload)) => match serde_json::from_str::<LiveEvent>(&payload) {
                            Ok(event) => release.accept(event),
                            Err(e) => tracing::warn!(error = %e, "ignoring an unreadable live event"),
                        },
                    },
                    answer = async { settling.as_mut().expect("guarded by the condition").await }, if settling.is_some() => {
                        settling = None;
                        match answer {
                            Ok(Ok(horizon)) => settled = Some(horizon),
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
