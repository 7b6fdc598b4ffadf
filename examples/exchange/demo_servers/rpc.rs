//! The RPC ports (endpoint mapper 135, CAS 59532, address book 59533). Exchange speaks
//! DCE/RPC there; a demo server answers with a line naming itself and the service,
//! then echoes every line back, which is enough to see where a client went.

use std::io;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use super::lines::read_line;
use crate::services::Service;

/// Serves one RPC session on `stream` as `server`.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    server: &str,
    service: Service,
) -> io::Result<()> {
    let mut s = BufReader::new(stream);
    let banner = format!(
        "{server} {} ready (lb demo: echoing lines)\r\n",
        service.relay
    );
    s.write_all(banner.as_bytes()).await?;
    while let Some(line) = read_line(&mut s).await? {
        s.write_all(format!("{line}\r\n").as_bytes()).await?;
    }
    s.shutdown().await
}
