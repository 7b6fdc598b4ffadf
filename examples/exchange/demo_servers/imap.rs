//! Enough IMAP (RFC 3501) for banner checks and Python's `imaplib`: a greeting naming
//! the server, and the tagged commands `CAPABILITY`, `NOOP`, `LOGIN` (any password,
//! atoms or quoted strings), `SELECT`/`EXAMINE` of an `INBOX` holding one message,
//! and `LOGOUT`.

use std::io;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use super::lines::read_line;

const CAPABILITY: &str = "IMAP4rev1";

/// Serves one IMAP session on `stream` as `server`.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(stream: S, server: &str) -> io::Result<()> {
    let mut s = BufReader::new(stream);
    s.write_all(
        format!("* OK [CAPABILITY {CAPABILITY}] {server} IMAP4rev1 server ready (lb demo)\r\n")
            .as_bytes(),
    )
    .await?;
    let mut user: Option<String> = None;
    while let Some(line) = read_line(&mut s).await? {
        let mut words = line.splitn(3, ' ');
        let tag = words.next().unwrap_or_default();
        let command = words.next().unwrap_or_default().to_ascii_uppercase();
        let args = words.next().unwrap_or_default();
        if tag.is_empty() || command.is_empty() {
            s.write_all(b"* BAD expected a tag and a command\r\n")
                .await?;
            continue;
        }
        let reply = match (command.as_str(), &user) {
            ("CAPABILITY", _) => {
                format!("* CAPABILITY {CAPABILITY}\r\n{tag} OK CAPABILITY completed\r\n")
            }
            ("NOOP", _) => format!("{tag} OK NOOP completed\r\n"),
            ("LOGOUT", _) => {
                let bye = format!(
                    "* BYE {server} IMAP4rev1 server logging out\r\n{tag} OK LOGOUT completed\r\n"
                );
                s.write_all(bye.as_bytes()).await?;
                break;
            }
            ("LOGIN", Some(_)) => format!("{tag} BAD already authenticated\r\n"),
            ("LOGIN", None) => match astrings(args).as_deref() {
                Ok([name, _password]) => {
                    user = Some(name.clone());
                    format!("{tag} OK [CAPABILITY {CAPABILITY}] {name} logged in to {server}\r\n")
                }
                Ok(_) => format!("{tag} BAD LOGIN expects a user name and a password\r\n"),
                Err(why) => format!("{tag} BAD {why}\r\n"),
            },
            ("SELECT" | "EXAMINE", Some(_)) => match astrings(args).as_deref() {
                Ok([mailbox]) if mailbox.eq_ignore_ascii_case("INBOX") => {
                    let access = if command == "SELECT" {
                        "READ-WRITE"
                    } else {
                        "READ-ONLY"
                    };
                    format!(
                        "* FLAGS (\\Seen \\Deleted)\r\n* 1 EXISTS\r\n* 0 RECENT\r\n\
                         * OK [UIDVALIDITY 1] UIDs valid\r\n* OK [UIDNEXT 2] predicted next UID\r\n\
                         {tag} OK [{access}] {command} completed\r\n"
                    )
                }
                Ok(_) => format!("{tag} NO this demo server has only INBOX\r\n"),
                Err(why) => format!("{tag} BAD {why}\r\n"),
            },
            ("SELECT" | "EXAMINE", None) => format!("{tag} NO LOGIN first\r\n"),
            _ => format!("{tag} BAD unknown command or not supported by this demo\r\n"),
        };
        s.write_all(reply.as_bytes()).await?;
    }
    s.shutdown().await
}

/// Splits IMAP `astring` arguments: atoms, or quoted strings with `\"` and `\\`
/// escapes. Literals (`{5}`) need a continuation round trip the demo does not do.
fn astrings(args: &str) -> Result<Vec<String>, &'static str> {
    let mut out = Vec::new();
    let mut chars = args.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        match chars.peek() {
            None => return Ok(out),
            Some('{') => return Err("literals are not supported by this demo server"),
            Some('"') => {
                chars.next();
                let mut word = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => word.push(c),
                            _ => return Err("invalid escape in a quoted string"),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated quoted string"),
                    }
                }
                out.push(word);
            }
            Some(_) => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c == ' ' {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                out.push(word);
            }
        }
    }
}
