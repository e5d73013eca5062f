//! Where an agent's commands run and its files live.
//!
//! [`Sandbox`] is the interface: foreground commands with bounded, streamed output and timeouts,
//! background processes, long-lived processes spoken to over their standard streams (tool
//! servers), and file operations confined to the workspace. [`LocalSandbox`] runs it
//! on this machine, isolated by bubblewrap when it works here.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rswe_sandbox::SandboxError> {
//! use rswe_sandbox::{ExecRequest, LocalSandbox, LocalSandboxConfig, Sandbox};
//! use tokio_util::sync::CancellationToken;
//!
//! let sandbox = LocalSandbox::new(LocalSandboxConfig::new("/var/lib/rswe/sessions/s1"))?;
//! sandbox.write_file("hello.txt".as_ref(), b"hi\n").await?;
//! let outcome = sandbox.exec(ExecRequest::new("cat hello.txt"), None, CancellationToken::new()).await?;
//! assert_eq!(outcome.stdout.head, "hi\n");
//! sandbox.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod background;
mod confinement;
mod error;
mod exec;
mod local;
mod output;
mod process;
mod sandbox;

pub use background::{BackgroundInfo, BackgroundRequest, BackgroundStarted, BackgroundStatus, DEFAULT_SETTLE};
pub use error::SandboxError;
pub use exec::{
    DEFAULT_HARD_TIMEOUT, DEFAULT_INACTIVITY_TIMEOUT, Ended, ExecOutcome, ExecRequest, OutputChunk, OutputSink,
    OutputStream,
};
pub use local::{DEFAULT_ENV_ALLOWLIST, LocalSandbox, LocalSandboxConfig, SandboxMode};
pub use output::{CapturedOutput, DEFAULT_OUTPUT_HEAD_BYTES, DEFAULT_OUTPUT_TAIL_BYTES};
pub use process::{ExitWatch, ProcessHandle, ProcessRequest, SandboxProcess, exit_code_of};
pub use sandbox::{DirEntry, Sandbox};
