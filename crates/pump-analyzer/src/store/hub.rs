//! In-process fan-out of live events to SSE clients.
//!
//! The storage writer publishes after each COMMIT, in commit order, so bet events arrive in id
//! order. A `broadcast` channel never blocks the publisher: a slow subscriber only lags, and the
//! SSE handler then re-reads what it missed from the database (no gap, bounded memory).

use std::sync::Arc;

use tokio::sync::broadcast;
use uuid::Uuid;

use crate::store::model::{BetRecord, StreamSummary};

/// Events buffered for subscribers before a slow one starts lagging.
const CAPACITY: usize = 4096;

/// Serializable so that PostgreSQL deployments can carry events between instances (NOTIFY).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum LiveEvent {
    /// A new seed pair appeared.
    Stream(Box<StreamSummary>),
    Bet(Box<BetRecord>),
    /// A newly observed round (heartbeat or bet).
    Round {
        stream_id: Uuid,
        nonce: i64,
        round_result: f64,
    },
    StreamDeleted {
        stream_id: Uuid,
    },
    /// Seed-reveal verification progressed for a stream.
    Verified {
        stream_id: Uuid,
    },
    /// Events may have been missed (the feed from other instances was interrupted and is back):
    /// subscribers re-read what they missed from the database.
    Resync,
}

impl LiveEvent {
    /// The stream the event is about; `None` for events about every stream.
    pub fn stream_id(&self) -> Option<Uuid> {
        match self {
            LiveEvent::Stream(s) => Some(s.id),
            LiveEvent::Bet(b) => Some(b.stream_id),
            LiveEvent::Round { stream_id, .. }
            | LiveEvent::StreamDeleted { stream_id }
            | LiveEvent::Verified { stream_id } => Some(*stream_id),
            LiveEvent::Resync => None,
        }
    }
}

/// The publishing side; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Arc<LiveEvent>>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(CAPACITY);
        Self { tx }
    }

    /// Whether anyone listens (publishers skip building events otherwise).
    pub fn has_subscribers(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    pub fn publish(&self, event: LiveEvent) {
        let _ = self.tx.send(Arc::new(event));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.tx.subscribe()
    }

    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }
}
