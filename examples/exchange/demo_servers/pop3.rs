//! Enough POP3 (RFC 1939, RFC 2449 for `CAPA`) for banner checks and Python's
//! `poplib`: a greeting naming the server, `CAPA`, `USER`/`PASS` (any password),
//! `STAT`, `LIST`, `RETR`, `NOOP`, `RSET` and `QUIT`, over one welcome message.

use std::io;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use super::lines::read_line;

/// Serves one POP3 session on `stream` as `server`.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(stream: S, server: &str) -> io::Result<()> {
    let mut s = BufReader::new(stream);
    let message = format!(
        "From: postmaster@demo.invalid\r\nSubject: Welcome to {server}\r\n\r\n\
         This message is stored on {server}, a demo server of the lb exchange example.\r\n"
    );
    s.write_all(format!("+OK {server} POP3 server ready (lb demo)\r\n").as_bytes())
        .await?;
    let mut user: Option<String> = None;
    let mut authenticated = false;
    while let Some(line) = read_line(&mut s).await? {
        let (command, argument) = match line.split_once(' ') {
            Some((c, a)) => (c.to_ascii_uppercase(), a.trim().to_owned()),
            None => (line.trim().to_ascii_uppercase(), String::new()),
        };
        let reply = match command.as_str() {
            "CAPA" => {
                "+OK capability list follows\r\nUSER\r\nUIDL\r\nIMPLEMENTATION lb-demo\r\n.\r\n"
                    .to_owned()
            }
            "QUIT" => {
                s.write_all(format!("+OK {server} POP3 server signing off\r\n").as_bytes())
                    .await?;
                break;
            }
            "NOOP" => "+OK\r\n".to_owned(),
            "USER" if authenticated => "-ERR already authenticated\r\n".to_owned(),
            "USER" if argument.is_empty() => "-ERR USER needs a name\r\n".to_owned(),
            "USER" => {
                let reply = format!("+OK {argument} is welcome here\r\n");
                user = Some(argument);
                reply
            }
            "PASS" => match (&user, authenticated) {
                (_, true) => "-ERR already authenticated\r\n".to_owned(),
                (None, false) => "-ERR USER first\r\n".to_owned(),
                (Some(name), false) => {
                    authenticated = true;
                    format!("+OK {name}'s maildrop on {server} has 1 message\r\n")
                }
            },
            _ if !authenticated => "-ERR not authenticated: USER and PASS first\r\n".to_owned(),
            "STAT" => format!("+OK 1 {}\r\n", message.len()),
            "LIST" if argument.is_empty() => {
                format!("+OK 1 message\r\n1 {}\r\n.\r\n", message.len())
            }
            "LIST" if argument == "1" => format!("+OK 1 {}\r\n", message.len()),
            "UIDL" if argument.is_empty() => format!("+OK\r\n1 welcome-{server}\r\n.\r\n"),
            "UIDL" if argument == "1" => format!("+OK 1 welcome-{server}\r\n"),
            "RETR" if argument == "1" => {
                format!("+OK {} octets\r\n{message}.\r\n", message.len())
            }
            "LIST" | "UIDL" | "RETR" => "-ERR no such message\r\n".to_owned(),
            "RSET" => "+OK\r\n".to_owned(),
            _ => format!("-ERR unknown command {command:?}\r\n"),
        };
        s.write_all(reply.as_bytes()).await?;
    }
    s.shutdown().await
}
