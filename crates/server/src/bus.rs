//! The in-process bus: everything the sessions do, as it happens, for whoever listens
//! (SSE clients, metrics, later Slack and GitHub). Events reach the bus only after the
//! log holds them, so a listener that falls behind re-reads the log and misses nothing.

use rswe_agent::LiveEvent;
use rswe_protocol::SessionId;
use std::sync::Arc;
use tokio::sync::broadcast;

/// How many messages a slow listener may fall behind before it is told it lagged.
const CAPACITY: usize = 8192;

/// What happened to a session.
#[derive(Debug, Clone)]
pub enum BusEvent {
    /// What the agent did or is doing (logged events, streamed text, running tools).
    Live(LiveEvent),
    /// The session's row changed outside the log (a status set by the service).
    Changed,
    /// The session was deleted.
    Deleted,
}

#[derive(Debug, Clone)]
pub struct BusMessage {
    pub session: SessionId,
    pub event: BusEvent,
}

/// A broadcast channel of [`BusMessage`]s for every session.
#[derive(Debug, Clone)]
pub struct Bus {
    sender: broadcast::Sender<Arc<BusMessage>>,
}

impl Default for Bus {
    fn default() -> Self {
        Bus::new()
    }
}

impl Bus {
    pub fn new() -> Self {
        Bus { sender: broadcast::channel(CAPACITY).0 }
    }

    pub fn publish(&self, session: &SessionId, event: BusEvent) {
        // No listener is no error.
        let _ = self.sender.send(Arc::new(BusMessage { session: session.clone(), event }));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<BusMessage>> {
        self.sender.subscribe()
    }
}
