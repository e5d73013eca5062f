//! Bounded capture of a command's output: the first and last bytes in memory, the rest streamed to
//! a file, live chunks cut on character boundaries.

use std::collections::VecDeque;
use std::path::PathBuf;

use nix::fcntl::OFlag;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::confinement;
use crate::exec::{OutputChunk, OutputSink, OutputStream};

/// Default number of bytes kept from the start of each stream.
pub const DEFAULT_OUTPUT_HEAD_BYTES: usize = 16 * 1024;
/// Default number of bytes kept from the end of each stream.
pub const DEFAULT_OUTPUT_TAIL_BYTES: usize = 16 * 1024;

/// What a command printed on one stream, bounded in size whatever it printed.
///
/// When nothing was omitted, `head` is the whole output and `tail` is empty. Otherwise `head` holds
/// the first bytes, `tail` the last bytes, `omitted_bytes` how many lie between them, and
/// `full_output` (unless it could not be written) a file in the workspace with everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapturedOutput {
    pub head: String,
    pub tail: String,
    pub total_bytes: u64,
    pub omitted_bytes: u64,
    pub full_output: Option<PathBuf>,
}

impl CapturedOutput {
    /// True when part of the output is not in `head`/`tail`.
    pub fn is_truncated(&self) -> bool {
        self.omitted_bytes > 0
    }
}

/// Where the complete output goes once it no longer fits: `rel` inside the directory `root`.
#[derive(Clone, Debug)]
pub(crate) struct SpillTarget {
    pub root: PathBuf,
    pub rel: PathBuf,
}

enum Spill {
    NotNeeded,
    Writing { file: tokio::fs::File, path: PathBuf },
    Failed,
}

/// Accumulates one stream of a running command with memory bounded by `head_limit + tail_limit`
/// (plus the chunk being handled).
pub(crate) struct OutputCapture {
    stream: OutputStream,
    head_limit: usize,
    tail_limit: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: u64,
    spill_target: Option<SpillTarget>,
    spill: Spill,
    live: Option<(OutputSink, Utf8Stream)>,
}

impl OutputCapture {
    pub(crate) fn new(
        stream: OutputStream,
        head_limit: usize,
        tail_limit: usize,
        spill_target: Option<SpillTarget>,
        sink: Option<OutputSink>,
    ) -> Self {
        OutputCapture {
            stream,
            head_limit,
            tail_limit,
            head: Vec::new(),
            tail: VecDeque::new(),
            total: 0,
            spill_target,
            spill: Spill::NotNeeded,
            live: sink.map(|sink| (sink, Utf8Stream::default())),
        }
    }

    pub(crate) async fn push(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if let Some((sink, decoder)) = &mut self.live {
            let text = decoder.push(bytes);
            if !text.is_empty() {
                sink(OutputChunk { stream: self.stream, text });
            }
        }
        self.total += bytes.len() as u64;
        if self.total > (self.head_limit + self.tail_limit) as u64 {
            self.spill_chunk(bytes).await;
        }
        let mut rest = bytes;
        if self.head.len() < self.head_limit {
            let take = (self.head_limit - self.head.len()).min(rest.len());
            self.head.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
        }
        self.push_tail(rest);
    }

    /// Writes `bytes` to the spill file, starting it (with everything kept so far, which is all
    /// the output until the first overflow) when this is the first chunk that does not fit.
    async fn spill_chunk(&mut self, bytes: &[u8]) {
        match &mut self.spill {
            Spill::Failed => {}
            Spill::Writing { file, path } => {
                if let Err(error) = file.write_all(bytes).await {
                    tracing::warn!(path = %path.display(), %error, "could not write the full command output");
                    self.spill = Spill::Failed;
                }
            }
            Spill::NotNeeded => {
                let Some(target) = self.spill_target.clone() else {
                    self.spill = Spill::Failed;
                    return;
                };
                let path = target.root.join(&target.rel);
                match self.start_spill(target, bytes).await {
                    Ok(file) => self.spill = Spill::Writing { file, path },
                    Err(error) => {
                        tracing::warn!(path = %path.display(), %error, "could not save the full command output");
                        self.spill = Spill::Failed;
                    }
                }
            }
        }
    }

    async fn start_spill(&mut self, target: SpillTarget, bytes: &[u8]) -> std::io::Result<tokio::fs::File> {
        let file = tokio::task::spawn_blocking(move || {
            confinement::open_file(
                &target.root,
                &target.rel,
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
                0o644,
                true,
            )
        })
        .await
        .map_err(std::io::Error::other)??;
        let mut file = tokio::fs::File::from_std(file);
        file.write_all(&self.head).await?;
        let (first, second) = self.tail.as_slices();
        file.write_all(first).await?;
        file.write_all(second).await?;
        file.write_all(bytes).await?;
        Ok(file)
    }

    fn push_tail(&mut self, rest: &[u8]) {
        if self.tail_limit == 0 || rest.is_empty() {
            return;
        }
        if rest.len() >= self.tail_limit {
            self.tail.clear();
            self.tail.extend(&rest[rest.len() - self.tail_limit..]);
        } else {
            let overflow = (self.tail.len() + rest.len()).saturating_sub(self.tail_limit);
            self.tail.drain(..overflow);
            self.tail.extend(rest);
        }
    }

    pub(crate) async fn finish(mut self) -> CapturedOutput {
        if let Some((sink, decoder)) = &mut self.live {
            let text = decoder.finish();
            if !text.is_empty() {
                sink(OutputChunk { stream: self.stream, text });
            }
        }
        let full_output = match &mut self.spill {
            Spill::Writing { file, path } => match file.flush().await {
                Ok(()) => Some(path.clone()),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "could not finish writing the full command output");
                    None
                }
            },
            Spill::NotNeeded | Spill::Failed => None,
        };
        let tail = self.tail.make_contiguous();
        if self.total <= (self.head_limit + self.tail_limit) as u64 {
            let mut all = std::mem::take(&mut self.head);
            all.extend_from_slice(tail);
            return CapturedOutput {
                head: String::from_utf8_lossy(&all).into_owned(),
                tail: String::new(),
                total_bytes: self.total,
                omitted_bytes: 0,
                full_output: None,
            };
        }
        let head = &self.head[..complete_prefix_len(&self.head)];
        let tail = &tail[leading_continuation_len(tail)..];
        CapturedOutput {
            head: String::from_utf8_lossy(head).into_owned(),
            tail: String::from_utf8_lossy(tail).into_owned(),
            total_bytes: self.total,
            omitted_bytes: self.total - (head.len() + tail.len()) as u64,
            full_output,
        }
    }
}

/// Turns a byte stream into text chunks without splitting characters across chunks.
#[derive(Default)]
pub(crate) struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    pub(crate) fn push(&mut self, bytes: &[u8]) -> String {
        if self.pending.is_empty() {
            let cut = complete_prefix_len(bytes);
            self.pending.extend_from_slice(&bytes[cut..]);
            return String::from_utf8_lossy(&bytes[..cut]).into_owned();
        }
        self.pending.extend_from_slice(bytes);
        let cut = complete_prefix_len(&self.pending);
        let text = String::from_utf8_lossy(&self.pending[..cut]).into_owned();
        self.pending.drain(..cut);
        text
    }

    pub(crate) fn finish(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        text
    }
}

/// Length of the longest prefix of `bytes` that does not end inside an incomplete UTF-8 sequence.
pub(crate) fn complete_prefix_len(bytes: &[u8]) -> usize {
    let len = bytes.len();
    for back in 1..=len.min(3) {
        let byte = bytes[len - back];
        if byte & 0xC0 == 0x80 {
            continue;
        }
        let needed = match byte {
            0xF0.. => 4,
            0xE0.. => 3,
            0xC0.. => 2,
            _ => 1,
        };
        return if needed > back { len - back } else { len };
    }
    len
}

/// Number of continuation bytes (at most 3) at the start of `bytes`: the end of a character whose
/// beginning was cut off.
pub(crate) fn leading_continuation_len(bytes: &[u8]) -> usize {
    bytes.iter().take(3).take_while(|byte| **byte & 0xC0 == 0x80).count()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn complete_prefix_stops_before_a_split_character() {
        let text = "aé€😀".as_bytes();
        // Every cut inside a multi-byte character backs up to its start.
        let starts = [0, 1, 3, 6, 10];
        for cut in 0..=text.len() {
            let expected = starts.iter().copied().filter(|start| *start <= cut).max().unwrap_or(0);
            let expected = if starts.contains(&cut) { cut } else { expected };
            assert_eq!(complete_prefix_len(&text[..cut]), expected, "cut at {cut}");
        }
    }

    #[test]
    fn utf8_stream_delivers_split_characters_whole() {
        let bytes = "héllo wörld 😀!".as_bytes();
        for split in 0..bytes.len() {
            let mut stream = Utf8Stream::default();
            let mut text = stream.push(&bytes[..split]);
            text.push_str(&stream.push(&bytes[split..]));
            text.push_str(&stream.finish());
            assert_eq!(text, "héllo wörld 😀!");
        }
    }

    #[test]
    fn utf8_stream_replaces_invalid_bytes() {
        let mut stream = Utf8Stream::default();
        let mut text = stream.push(b"a\xffb\xe2\x82");
        text.push_str(&stream.finish());
        assert_eq!(text, "a\u{fffd}b\u{fffd}");
    }

    #[tokio::test]
    async fn short_output_is_kept_whole() {
        let mut capture = OutputCapture::new(OutputStream::Stdout, 4, 4, None, None);
        capture.push("ab".as_bytes()).await;
        capture.push("cdé".as_bytes()).await;
        let captured = capture.finish().await;
        assert_eq!(captured.head, "abcdé");
        assert_eq!(captured.tail, "");
        assert_eq!(captured.total_bytes, 6);
        assert!(!captured.is_truncated());
    }

    #[tokio::test]
    async fn long_output_keeps_head_and_tail_and_spills_everything() {
        let dir = tempfile::tempdir().unwrap();
        let target = SpillTarget { root: dir.path().to_path_buf(), rel: PathBuf::from("out/x.log") };
        let chunks: Arc<Mutex<Vec<OutputChunk>>> = Arc::default();
        let seen = chunks.clone();
        let sink: OutputSink = Arc::new(move |chunk| seen.lock().unwrap().push(chunk));
        let mut capture = OutputCapture::new(OutputStream::Stderr, 5, 5, Some(target), Some(sink));
        let mut expected = Vec::new();
        for i in 0..100u32 {
            let piece = format!("{i}é,");
            expected.extend_from_slice(piece.as_bytes());
            // Split each piece in the middle of the é to exercise the live decoder.
            let bytes = piece.as_bytes();
            let middle = bytes.len() - 2;
            capture.push(&bytes[..middle]).await;
            capture.push(&bytes[middle..]).await;
        }
        let captured = capture.finish().await;
        assert_eq!(captured.total_bytes, expected.len() as u64);
        assert_eq!(captured.head, "0é,1");
        assert_eq!(captured.tail, "99é,");
        assert_eq!(captured.omitted_bytes, expected.len() as u64 - 5 - 5);
        let full = std::fs::read(captured.full_output.unwrap()).unwrap();
        assert_eq!(full, expected);
        let live: String = chunks.lock().unwrap().iter().map(|chunk| chunk.text.as_str()).collect();
        assert_eq!(live.as_bytes(), expected);
        assert!(chunks.lock().unwrap().iter().all(|chunk| chunk.stream == OutputStream::Stderr));
    }
}
