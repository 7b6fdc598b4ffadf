//! relayd's `check binary send HEX expect HEX`: [`Binary`].
//!
//! relayd sends the decoded bytes, then compares the first bytes it receives with the
//! expected ones (`check_tcp.c`, `check_send_expect` with `CHECK_BINSEND_EXPECT`: a
//! `memcmp` of the expected length, waiting for more data while the buffer is
//! shorter). We also fail as soon as a received byte differs, instead of waiting for
//! the rest.

use futures_util::future::BoxFuture;

use crate::conn::{self, Transport};
#[cfg(feature = "tls")]
use crate::TlsOptions;
use crate::{Check, Error, Failure, Outcome, Probe, Reason};

/// relayd's `check binary send HEX expect HEX`.
///
/// ```
/// use lb_health::Binary;
/// // A DNS-over-TCP style probe: expect the length prefix 0x00 0x1d back.
/// let check = Binary::new("001d", "001d")?;
/// assert_eq!(check.expected(), &[0x00, 0x1d]);
/// assert!(Binary::new("0g", "00").is_err());
/// # Ok::<(), lb_health::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Binary {
    send: Vec<u8>,
    expect: Vec<u8>,
    transport: Transport,
}

impl Binary {
    /// Sends the bytes of `send_hex` (may be empty), expects the first bytes received
    /// to be those of `expect_hex` (at least one byte).
    pub fn new(send_hex: &str, expect_hex: &str) -> Result<Self, Error> {
        let send = decode("send", send_hex)?;
        let expect = decode("expect", expect_hex)?;
        if expect.is_empty() {
            return Err(Error::InvalidHex {
                field: "expect",
                reason: "empty".to_owned(),
            });
        }
        Ok(Binary {
            send,
            expect,
            transport: Transport::default(),
        })
    }

    /// The same check over TLS.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, options: TlsOptions) -> Self {
        self.transport.tls = Some(options);
        self
    }

    /// The bytes sent.
    pub fn sent(&self) -> &[u8] {
        &self.send
    }

    /// The bytes expected.
    pub fn expected(&self) -> &[u8] {
        &self.expect
    }

    fn mismatch(&self, received: &[u8], how: &str) -> Failure {
        Failure::new(Reason::ExpectMismatch).with_detail(format!(
            "expected {}, received {}{how}",
            hex::encode(&self.expect),
            hex::encode(&received[..received.len().min(self.expect.len())])
        ))
    }

    async fn run(&self, probe: &Probe) -> Result<(), Failure> {
        let mut stream = self.transport.open(probe, None).await?;
        conn::send(&mut stream, &self.send, probe.deadline()).await?;
        let mut buf = Vec::with_capacity(self.expect.len());
        while buf.len() < self.expect.len() {
            let n =
                match conn::read_more(&mut stream, &mut buf, self.expect.len(), probe.deadline())
                    .await
                {
                    Ok(n) => n,
                    Err(f) if f.reason() == Reason::ReadTimeout && !buf.is_empty() => {
                        return Err(self.mismatch(&buf, " before the timeout"))
                    }
                    Err(f) => return Err(f),
                };
            if buf[..] != self.expect[..buf.len()] {
                return Err(self.mismatch(&buf, ""));
            }
            if n == 0 {
                return Err(self.mismatch(&buf, " before the connection closed"));
            }
        }
        Ok(())
    }
}

fn decode(field: &'static str, text: &str) -> Result<Vec<u8>, Error> {
    hex::decode(text.trim()).map_err(|e| Error::InvalidHex {
        field,
        reason: e.to_string(),
    })
}

impl Check for Binary {
    fn name(&self) -> &'static str {
        "binary"
    }

    fn check<'a>(&'a self, probe: &'a Probe) -> BoxFuture<'a, Outcome> {
        Box::pin(async move { self.run(probe).await.into() })
    }
}
