//! Server-sent events, decoded from a byte stream as the WHATWG spec describes
//! (`event:` and `data:` fields, comments, CR/LF line endings, events ended by a blank line).

use bytes::Bytes;
use futures::{Stream, StreamExt, stream};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field; `None` means the default type, "message".
    pub event: Option<String>,
    pub data: String,
}

#[derive(Debug, Default)]
struct SseDecoder {
    buffer: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
}

impl SseDecoder {
    /// Feeds bytes; returns the events they complete.
    fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.iter().position(|b| *b == b'\n' || *b == b'\r') {
            // A CR LF pair is one line ending; a lone CR at the end of the buffer may still
            // be followed by its LF, which is then an empty line we must not count twice.
            let mut consumed = end + 1;
            if self.buffer[end] == b'\r' {
                match self.buffer.get(end + 1) {
                    Some(b'\n') => consumed += 1,
                    None => break,
                    _ => {}
                }
            }
            let line: Vec<u8> = self.buffer.drain(..consumed).take(end).collect();
            let line = String::from_utf8_lossy(&line);
            if let Some(event) = self.line(&line) {
                events.push(event);
            }
        }
        events
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let data = self.data.take();
            let event = self.event.take();
            return data.map(|data| SseEvent { event, data });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            _ => {}
        }
        None
    }
}

/// Turns a body stream into SSE events. A transport error ends the stream with that error.
pub(crate) fn sse_events<S, E>(body: S) -> impl Stream<Item = Result<SseEvent, E>>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    stream::unfold(
        (body, SseDecoder::default(), Vec::<SseEvent>::new()),
        |(mut body, mut decoder, mut pending)| async move {
            loop {
                if !pending.is_empty() {
                    let event = pending.remove(0);
                    return Some((Ok(event), (body, decoder, pending)));
                }
                match body.next().await {
                    Some(Ok(bytes)) => pending = decoder.push(&bytes),
                    Some(Err(error)) => return Some((Err(error), (body, decoder, pending))),
                    None => return None,
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(chunks: &[&str]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::default();
        chunks.iter().flat_map(|c| decoder.push(c.as_bytes())).collect()
    }

    #[test]
    fn events_split_anywhere_decode_the_same() {
        let text = "event: message_start\ndata: {\"a\":1}\n\n: keep-alive\n\ndata: one\ndata: two\n\n";
        let whole = decode(&[text]);
        assert_eq!(
            whole,
            vec![
                SseEvent { event: Some("message_start".into()), data: "{\"a\":1}".into() },
                SseEvent { event: None, data: "one\ntwo".into() },
            ]
        );
        for split in 0..text.len() {
            assert_eq!(decode(&[&text[..split], &text[split..]]), whole, "split at {split}");
        }
    }

    #[test]
    fn crlf_and_cr_line_endings() {
        assert_eq!(decode(&["data: x\r\n\r\ndata: y\r\r\n"]).len(), 2);
        assert_eq!(decode(&["data: x\r", "\n\r", "\n"]), vec![SseEvent { event: None, data: "x".into() }]);
    }
}
