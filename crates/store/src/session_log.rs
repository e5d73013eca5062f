//! The store as the agent's session log: the narrow interface through which the agent
//! persists, so it never sees SQL.

use crate::Store;
use rswe_agent::{LogError, SessionLog};
use rswe_protocol::{Event, EventKind, SessionId};

/// Events read per query when the agent catches up with a session's log.
const PAGE: u32 = 1000;

#[async_trait::async_trait]
impl SessionLog for Store {
    async fn append(&self, session: &SessionId, kind: EventKind) -> Result<Event, LogError> {
        Store::append(self, session, kind).await.map_err(|error| LogError(error.to_string()))
    }

    async fn events_after(&self, session: &SessionId, after: u64) -> Result<Vec<Event>, LogError> {
        let mut all = Vec::new();
        let mut after = after;
        loop {
            let page = self.events(session, after, PAGE).await.map_err(|error| LogError(error.to_string()))?;
            let done = page.len() < PAGE as usize;
            after = page.last().map_or(after, |event| event.seq);
            all.extend(page);
            if done {
                return Ok(all);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NewSession;
    use rswe_protocol::ContentBlock;

    #[tokio::test]
    async fn the_agent_reads_back_every_event_across_pages() {
        let store = Store::open_in_memory().await.unwrap();
        let session = store
            .create_session(NewSession { model: "m".into(), channel: "cli".into(), ..Default::default() })
            .await
            .unwrap();
        let log: &dyn SessionLog = &store;
        for i in 0..(PAGE + 5) {
            let kind = EventKind::UserMessage { content: vec![ContentBlock::text(format!("m{i}"))], author: None };
            log.append(&session.id, kind).await.unwrap();
        }
        let events = log.events_after(&session.id, 3).await.unwrap();
        assert_eq!(events.len(), PAGE as usize + 2);
        assert_eq!(events.first().unwrap().seq, 4);
        assert_eq!(events.last().unwrap().seq, u64::from(PAGE) + 5);
    }
}
