//! An axum app served on a bound listener until stopped or dropped: the lifecycle every
//! fake server here shares.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running fake server. Dropping it stops the server.
pub(crate) struct Served {
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Served {
    /// Serves `app` on `listener`; `name` is for the log.
    pub(crate) fn start(
        listener: tokio::net::TcpListener,
        addr: SocketAddr,
        app: axum::Router,
        name: &'static str,
    ) -> Served {
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = rx.await;
            });
            if let Err(error) = serve.await {
                tracing::error!(%error, "{name} stopped");
            }
        });
        tracing::debug!(%addr, "{name} listening");
        Served { shutdown: Some(tx), task: Some(task) }
    }

    /// Stops accepting connections and waits (briefly) for open ones to finish.
    pub(crate) async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(2), &mut task).await.is_err()
        {
            task.abort();
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
