//! Copying one relayed session both ways: half-close, idle timeout, byte counts.
//!
//! [`bidirectional`] is what a relay runs once a client is connected to a backend. It
//! differs from tokio's `copy_bidirectional` in the three ways relayd's relay needs:
//!
//! - **Half-close.** When one side sends FIN (EOF on read), the other side's writing
//!   half is shut down (`shutdown(SHUT_WR)`) and the other direction keeps flowing until
//!   it ends too; a client that sends a request and shuts down writing still gets the
//!   whole response (RFC 9293 section 3.6: a half-closed connection may keep sending).
//! - **One idle timeout for both directions.** relayd's `session timeout` (600 s by
//!   default) closes a session on which nothing moved for that long, in either
//!   direction: a byte either way, or a FIN, restarts the clock. A download whose
//!   client never sends anything is not idle.
//! - **Live byte counts.** [`Progress`] counts bytes delivered each way as they go, so
//!   a stats snapshot can read them while the session runs; [`Totals`] gives the final
//!   counts and why the session ended.
//!
//! ## Zero copy on Linux
//!
//! With the default-on `splice` feature on Linux and [`CopyOptions::splice`] set, a
//! direction that has moved more than 64 KiB switches to `splice(2)`: from the source
//! socket into a pipe and from the pipe into the destination socket, so payload never
//! enters user space (the technique HAProxy uses for TCP; `benches/relay.rs` measured
//! about 15 against 9-11 Gbit/s for one stream through the portable copy, on two
//! shared cores). The first 64 KiB go through the portable copy, so short exchanges (a
//! request and a response, a health probe) never pay for creating and closing a pipe,
//! and only bulk directions hold one. The switch happens with every byte read also
//! written, so nothing is reordered. If the pipe cannot be created (descriptor limits),
//! the direction stays on the portable copy. Elsewhere, or with the feature off, the
//! portable copy is compiled alone. [`Progress`] counts the spliced bytes of each
//! direction apart, so a caller can tell which path ran.
//!
//! ## Short sessions
//!
//! Most sessions of a mail or web front are short (a banner, a request, a response),
//! so the copy is built to cost few system calls and no allocation for them:
//!
//! - reads go into one 64 KiB scratch buffer per thread, and what the destination
//!   takes at once is written from there; a direction holds a buffer of its own only
//!   while the destination pushes back;
//! - a read that returns less than the buffer holds has emptied the socket, so it
//!   clears tokio's readiness (as tokio's `poll_read` does) instead of reading again
//!   only to learn `EAGAIN`;
//! - the first write to a backend whose connect completed at once goes straight to the
//!   socket, without waiting for the I/O driver to report it writable;
//! - when both sides close at about the same time, no `shutdown(SHUT_WR)` is made:
//!   both sockets are closed right after, and the close sends the same FIN.
//!
//! ## Memory of an idle session
//!
//! An idle session holds no copy buffer at all (see above): only the state of this
//! future (about 1.5 KB, kept small by waiting on the streams' own waker slots,
//! `poll_read_ready`), its task header, and the sockets' tokio registrations, about
//! 2.4 KB in all on x86-64. The `copy_idle_memory` integration test measures it with a
//! counting allocator and fails above 4 KiB. Kernel memory (socket buffers, the pipes
//! of bulk directions) is not user-space memory and is not counted, nor is the scratch
//! buffer, one per thread however many sessions run.

mod join;
mod portable;
#[cfg(all(target_os = "linux", feature = "splice"))]
mod splice;

use std::io;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

/// How [`bidirectional`] copies a session.
///
/// Defaults:
/// - `idle_timeout`: 600 s (relayd's `session timeout`);
/// - `splice`: `true` (used only on Linux with the `splice` feature; ignored elsewhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOptions {
    /// Close the session when no byte (and no FIN) moved in either direction for this
    /// long. Zero ends the session at once; a duration too large to add to the current
    /// instant (`Duration::MAX`) means no timeout.
    pub idle_timeout: Duration,
    /// Use `splice(2)` through a pipe for each direction past its first 64 KiB, on Linux
    /// with the `splice` feature (ignored elsewhere).
    pub splice: bool,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            idle_timeout: Duration::from_secs(600),
            splice: true,
        }
    }
}

/// Bytes delivered each way so far, updated while the session runs, and how many of
/// them went through `splice(2)`.
///
/// Share one with a stats reader (it is `Sync`); counts only grow. A byte is counted
/// once the destination socket accepted it. The spliced counts are part of the
/// delivered ones; they stay 0 with [`CopyOptions::splice`] off, without the `splice`
/// feature, off Linux, for a direction that never passed its first 64 KiB, and when no
/// pipe could be created. They are how a test (or an operator) tells that zero copy
/// actually ran.
#[derive(Debug, Default)]
pub struct Progress {
    client_to_server: AtomicU64,
    server_to_client: AtomicU64,
    spliced_client_to_server: AtomicU64,
    spliced_server_to_client: AtomicU64,
}

impl Progress {
    /// Bytes delivered from the client to the server so far.
    pub fn client_to_server(&self) -> u64 {
        self.client_to_server.load(Ordering::Relaxed)
    }

    /// Bytes delivered from the server to the client so far.
    pub fn server_to_client(&self) -> u64 {
        self.server_to_client.load(Ordering::Relaxed)
    }

    /// Of [`client_to_server`](Progress::client_to_server), the bytes moved by
    /// `splice(2)`.
    pub fn spliced_client_to_server(&self) -> u64 {
        self.spliced_client_to_server.load(Ordering::Relaxed)
    }

    /// Of [`server_to_client`](Progress::server_to_client), the bytes moved by
    /// `splice(2)`.
    pub fn spliced_server_to_client(&self) -> u64 {
        self.spliced_server_to_client.load(Ordering::Relaxed)
    }
}

/// How a session ended, with the bytes it moved each way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    /// Bytes delivered from the client to the server.
    pub client_to_server: u64,
    /// Bytes delivered from the server to the client.
    pub server_to_client: u64,
    /// Why the session ended.
    pub end: End,
}

/// Why [`bidirectional`] returned normally (errors are returned as `io::Error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum End {
    /// Both sides sent FIN and every byte was delivered.
    Closed,
    /// Nothing moved in either direction for [`CopyOptions::idle_timeout`].
    IdleTimeout,
}

/// The instant of the last byte or FIN in either direction, shared by both directions
/// and the idle timer. Stored as nanoseconds since the session started so it fits an
/// atomic and the future stays `Send`.
struct Activity {
    start: Instant,
    nanos: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            nanos: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let nanos = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.nanos.store(nanos, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_nanos(self.nanos.load(Ordering::Relaxed))
    }
}

/// What one direction of a session needs besides its two sockets.
struct Direction<'a> {
    delivered: &'a AtomicU64,
    // Written only by the splice path; without it the count simply stays 0.
    #[cfg_attr(not(all(target_os = "linux", feature = "splice")), allow(dead_code))]
    spliced: &'a AtomicU64,
    /// The same two counts summed over every session of a relay, if any.
    total: Option<(&'a AtomicU64, &'a AtomicU64)>,
    activity: &'a Activity,
}

impl<'a> Direction<'a> {
    fn new(
        delivered: &'a AtomicU64,
        spliced: &'a AtomicU64,
        total: Option<(&'a AtomicU64, &'a AtomicU64)>,
        activity: &'a Activity,
    ) -> Self {
        Direction {
            delivered,
            spliced,
            total,
            activity,
        }
    }

    fn delivered(&self, n: usize) {
        self.delivered.fetch_add(n as u64, Ordering::Relaxed);
        if let Some((delivered, _)) = self.total {
            delivered.fetch_add(n as u64, Ordering::Relaxed);
        }
        self.activity.touch();
    }

    /// `n` bytes delivered by `splice(2)`.
    #[cfg(all(target_os = "linux", feature = "splice"))]
    fn spliced(&self, n: usize) {
        self.spliced.fetch_add(n as u64, Ordering::Relaxed);
        if let Some((_, spliced)) = self.total {
            spliced.fetch_add(n as u64, Ordering::Relaxed);
        }
        self.delivered(n);
    }
}

/// Copies `client` to `server` and `server` to `client` until both directions ended or
/// the session was idle for `opts.idle_timeout`.
///
/// Half-close is honoured: EOF from one side shuts down writing on the other and the
/// other direction continues. Both sockets are closed when this returns (they are
/// dropped). `progress` is updated live; the returned [`Totals`] hold the final counts.
///
/// # Errors
///
/// The first I/O error of either direction (for example `ConnectionReset` when a peer
/// aborts); the bytes delivered until then are in `progress`.
///
/// ```no_run
/// # async fn demo(client: tokio::net::TcpStream, server: tokio::net::TcpStream) -> std::io::Result<()> {
/// use lb_relay::copy::{bidirectional, CopyOptions, Progress};
///
/// let progress = Progress::default();
/// let totals = bidirectional(client, server, &CopyOptions::default(), &progress).await?;
/// tracing::debug!(up = totals.client_to_server, down = totals.server_to_client, end = ?totals.end, "session");
/// # Ok(()) }
/// ```
pub async fn bidirectional(
    client: TcpStream,
    server: TcpStream,
    opts: &CopyOptions,
    progress: &Progress,
) -> io::Result<Totals> {
    run(client, server, opts, progress, None).await
}

/// [`bidirectional`], also counting every byte in `relay`, the running totals of all of
/// a relay's sessions.
pub(crate) async fn bidirectional_counted(
    client: TcpStream,
    server: TcpStream,
    opts: &CopyOptions,
    progress: &Progress,
    relay: &Progress,
) -> io::Result<Totals> {
    run(client, server, opts, progress, Some(relay)).await
}

async fn run(
    client: TcpStream,
    server: TcpStream,
    opts: &CopyOptions,
    progress: &Progress,
    relay: Option<&Progress>,
) -> io::Result<Totals> {
    let activity = Activity::new();
    let up = Direction::new(
        &progress.client_to_server,
        &progress.spliced_client_to_server,
        relay.map(|r| (&r.client_to_server, &r.spliced_client_to_server)),
        &activity,
    );
    let down = Direction::new(
        &progress.server_to_client,
        &progress.spliced_server_to_client,
        relay.map(|r| (&r.server_to_client, &r.spliced_server_to_client)),
        &activity,
    );
    let up = pin!(one_way(&client, &server, up, opts.splice));
    let down = pin!(one_way(&server, &client, down, opts.splice));
    let both = join::both_ways(up, down, &client, &server);
    let end = tokio::select! {
        result = both => {
            result?;
            End::Closed
        }
        () = idle(&activity, opts.idle_timeout) => End::IdleTimeout,
    };
    Ok(Totals {
        client_to_server: progress.client_to_server(),
        server_to_client: progress.server_to_client(),
        end,
    })
}

/// Completes once `activity` is older than `timeout`; never if `timeout` cannot be
/// added to an instant.
async fn idle(activity: &Activity, timeout: Duration) {
    loop {
        let Some(deadline) = activity.last().checked_add(timeout) else {
            return std::future::pending().await;
        };
        if Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep_until(deadline).await;
    }
}

/// Copies `src` to `dst` until EOF on `src` (the caller then shuts down writing on
/// `dst`, see `join::both_ways`).
async fn one_way(
    src: &TcpStream,
    dst: &TcpStream,
    dir: Direction<'_>,
    splice: bool,
) -> io::Result<()> {
    copy_until_eof(src, dst, &dir, splice).await?;
    dir.activity.touch();
    Ok(())
}

/// Waits until `stream` is readable (or has EOF or an error pending).
///
/// This uses the stream's own read-waker slot (`poll_read_ready`) rather than
/// `readable()`, whose future carries a waiter node (about 150 bytes) that would sit in
/// every session's state at each wait point. The slot allows a single waiting task per
/// stream and direction, which holds here: each stream is read by one direction and
/// written by the other, both polled by the one task running [`bidirectional`]. Readiness
/// is cleared by `try_read`/`try_io` returning `WouldBlock`, as with `readable()`.
async fn read_ready(stream: &TcpStream) -> io::Result<()> {
    std::future::poll_fn(|cx| stream.poll_read_ready(cx)).await
}

/// Waits until `stream` is writable; see [`read_ready`] for why not `writable()`.
async fn write_ready(stream: &TcpStream) -> io::Result<()> {
    std::future::poll_fn(|cx| stream.poll_write_ready(cx)).await
}

/// Bytes a direction copies through user space before it switches to splice. Short
/// exchanges (a request, a response, a 1-byte echo) never pay for a pipe: creating and
/// closing one costs three system calls and two descriptors.
#[cfg(all(target_os = "linux", feature = "splice"))]
const SPLICE_AFTER: u64 = 64 * 1024;

#[cfg(all(target_os = "linux", feature = "splice"))]
async fn copy_until_eof(
    src: &TcpStream,
    dst: &TcpStream,
    dir: &Direction<'_>,
    use_splice: bool,
) -> io::Result<()> {
    let mut mode = portable::WriteMode::fresh();
    if !use_splice {
        return portable::copy(src, dst, dir, &mut mode, u64::MAX)
            .await
            .map(drop);
    }
    if portable::copy(src, dst, dir, &mut mode, SPLICE_AFTER).await? == portable::Stopped::Eof {
        return Ok(());
    }
    match splice::Pipe::new() {
        Ok(pipe) => splice::copy(src, dst, pipe, dir).await,
        Err(error) => {
            tracing::warn!(%error, "cannot create a pipe for splice, copying through user space");
            portable::copy(src, dst, dir, &mut mode, u64::MAX)
                .await
                .map(drop)
        }
    }
}

#[cfg(not(all(target_os = "linux", feature = "splice")))]
async fn copy_until_eof(
    src: &TcpStream,
    dst: &TcpStream,
    dir: &Direction<'_>,
    _splice: bool,
) -> io::Result<()> {
    let mut mode = portable::WriteMode::fresh();
    portable::copy(src, dst, dir, &mut mode, u64::MAX)
        .await
        .map(drop)
}
