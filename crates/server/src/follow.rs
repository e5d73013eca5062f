//! Following the log for a channel that tells people what sessions say (Slack threads,
//! GitHub comments): a worker per session that has somewhere to answer, woken by the bus.
//!
//! The bus only wakes a worker; the channel's [`Deliver::deliver`] reads the log itself
//! and records how far it got, so a lagging bus, an outage or a restart loses and repeats
//! nothing. When the channel's service cannot be reached, the worker tries again after a
//! growing pause.

use crate::bus::{BusEvent, BusMessage};
use rswe_agent::LiveEvent;
use rswe_protocol::SessionId;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

/// The pause before trying the service again, at first and at the most.
const FIRST_RETRY: Duration = Duration::from_secs(5);
const LAST_RETRY: Duration = Duration::from_secs(300);

/// How a delivery pass ended.
pub(crate) enum Pass {
    Done,
    /// The service could not be reached: try again later.
    Unreachable,
}

/// What a channel does for the sessions it follows.
pub(crate) trait Deliver: Clone + Send + Sync + 'static {
    /// The sessions with somewhere to answer, to wake at start and after the bus lagged;
    /// none (the reason logged) when they cannot be read.
    fn sessions(&self) -> impl Future<Output = Vec<SessionId>> + Send;

    /// Tells the session's audience every new event of its log.
    fn deliver(&self, session: &SessionId) -> impl Future<Output = Pass> + Send;
}

/// The workers of a channel's sessions.
#[derive(Clone)]
pub(crate) struct Follower<D: Deliver> {
    deliverer: D,
    closing: CancellationToken,
    /// A wake-up channel per session with somewhere to answer.
    workers: Arc<Mutex<HashMap<SessionId, mpsc::Sender<()>>>>,
    /// Sessions known to have somewhere to answer, so most bus messages cost no database read.
    bound: Arc<Mutex<HashSet<SessionId>>>,
}

impl<D: Deliver> Follower<D> {
    pub(crate) fn new(deliverer: D, closing: CancellationToken) -> Follower<D> {
        Follower { deliverer, closing, workers: Arc::default(), bound: Arc::default() }
    }

    /// What the channel delivers with.
    pub(crate) fn deliverer(&self) -> &D {
        &self.deliverer
    }

    /// Wakes the workers of bound sessions when something is logged, until the server
    /// closes.
    pub(crate) fn follow(&self, mut bus: broadcast::Receiver<Arc<BusMessage>>) {
        let follower = self.clone();
        tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    message = bus.recv() => message,
                    () = follower.closing.cancelled() => return,
                };
                match message {
                    Ok(message) => match &message.event {
                        BusEvent::Live(LiveEvent::Logged(_)) if follower.is_bound(&message.session) => {
                            follower.kick(&message.session);
                        }
                        BusEvent::Deleted => follower.forget(&message.session),
                        _ => {}
                    },
                    // Fell behind: every worker reads the log anyway.
                    Err(broadcast::error::RecvError::Lagged(_)) => follower.catch_up().await,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }

    fn is_bound(&self, session: &SessionId) -> bool {
        self.bound.lock().unwrap_or_else(PoisonError::into_inner).contains(session)
    }

    fn forget(&self, session: &SessionId) {
        self.bound.lock().unwrap_or_else(PoisonError::into_inner).remove(session);
        // Dropping the sender ends the worker.
        self.workers.lock().unwrap_or_else(PoisonError::into_inner).remove(session);
    }

    /// Wakes every session with somewhere to answer (at start, and after the bus lagged).
    pub(crate) async fn catch_up(&self) {
        for session in self.deliverer.sessions().await {
            self.kick(&session);
        }
    }

    /// Makes the session's worker read the log (starting the worker if needed).
    pub(crate) fn kick(&self, session: &SessionId) {
        self.bound.lock().unwrap_or_else(PoisonError::into_inner).insert(session.clone());
        let mut workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(worker) = workers.get(session) {
            // Full: a pass is pending already and will see everything.
            let _ = worker.try_send(());
            return;
        }
        let (sender, wakes) = mpsc::channel(1);
        let _ = sender.try_send(());
        workers.insert(session.clone(), sender);
        let follower = self.clone();
        let session = session.clone();
        tokio::spawn(async move { follower.work(session, wakes).await });
    }

    /// A session's worker: a pass per wake-up; after a pass the service did not let
    /// finish, a growing pause and another pass.
    async fn work(&self, session: SessionId, mut wakes: mpsc::Receiver<()>) {
        let mut retry = FIRST_RETRY;
        let mut pending = false;
        loop {
            if !pending {
                tokio::select! {
                    woken = wakes.recv() => if woken.is_none() { return },
                    () = self.closing.cancelled() => return,
                }
            }
            match self.deliverer.deliver(&session).await {
                Pass::Done => {
                    pending = false;
                    retry = FIRST_RETRY;
                }
                Pass::Unreachable => {
                    pending = true;
                    tokio::select! {
                        () = tokio::time::sleep(retry) => {}
                        woken = wakes.recv() => if woken.is_none() { return },
                        () = self.closing.cancelled() => return,
                    }
                    retry = (retry * 2).min(LAST_RETRY);
                }
            }
        }
    }
}
