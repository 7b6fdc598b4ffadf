//! Both directions of a session, and the half-close between them.

use std::future::Future;
use std::io;
use std::net::Shutdown;
use std::pin::Pin;
use std::task::Poll;

use tokio::net::TcpStream;

/// Runs both directions until both reached EOF, or the first error.
///
/// When one direction reaches EOF and the other has not, writing is shut down on the
/// first one's destination, so its peer sees the FIN and the other direction keeps
/// flowing (half-close). The decision waits until both directions were polled in the
/// same round: when both sides closed at about the same time (an HTTP exchange with
/// `Connection: close`, where the client closes as soon as it has the response and the
/// server closes after sending it), both EOFs are seen together and no `shutdown` is
/// needed, since both sockets are closed right after and the close sends the FIN.
///
/// The directions come pinned by the caller so that their state is stored once, in the
/// caller's future (an `async fn` would hold a second copy of its arguments).
pub(super) fn both_ways<'a>(
    mut up: Pin<&'a mut impl Future<Output = io::Result<()>>>,
    mut down: Pin<&'a mut impl Future<Output = io::Result<()>>>,
    client: &'a TcpStream,
    server: &'a TcpStream,
) -> impl Future<Output = io::Result<()>> + 'a {
    let (mut up_done, mut down_done) = (false, false);
    let mut shut = false;
    std::future::poll_fn(move |cx| {
        if !up_done {
            if let Poll::Ready(result) = up.as_mut().poll(cx) {
                result?;
                up_done = true;
            }
        }
        if !down_done {
            if let Poll::Ready(result) = down.as_mut().poll(cx) {
                result?;
                down_done = true;
            }
        }
        match (up_done, down_done) {
            (true, true) => return Poll::Ready(Ok(())),
            (true, false) if !shut => {
                shut = true;
                shut_down_writing(server)?;
            }
            (false, true) if !shut => {
                shut = true;
                shut_down_writing(client)?;
            }
            _ => {}
        }
        Poll::Pending
    })
}

/// `shutdown(SHUT_WR)`: the peer reads EOF once it has every byte sent before.
fn shut_down_writing(stream: &TcpStream) -> io::Result<()> {
    match socket2::SockRef::from(stream).shutdown(Shutdown::Write) {
        // The peer is already gone: there is nobody left to tell.
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        other => other,
    }
}
