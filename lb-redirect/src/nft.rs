//! Running `nft`: one transaction per call, in nft's own syntax on standard input, read
//! back as JSON.
//!
//! Why text and not the JSON input: kube-proxy's nftables mode (knftables) writes its
//! transactions in nft's syntax and reads with `nft --json list` for the same reason we
//! do. The JSON input of nft 1.0.6 (Debian 12, our CI) cannot declare a map keyed by
//! a hash (`typeof jhash ...`: "unqualified type integer"), has no map or set-update
//! statement with data ("Unknown statement object 'map'"), and crashes on a `dnat` to a
//! concatenated `address . port` map. Everything `nft -f -` reads is one atomic
//! transaction: it applies whole or not at all.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::Error;

/// The `nft` tool at a path.
#[derive(Clone, Debug)]
pub(crate) struct Nft {
    path: PathBuf,
}

impl Nft {
    pub(crate) fn new(path: PathBuf) -> Self {
        Nft { path }
    }

    /// Applies `script` as one transaction; returns how long `nft` took.
    pub(crate) fn apply(&self, script: &str) -> Result<Duration, Error> {
        let started = Instant::now();
        let mut child = self
            .command()
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.spawn_error(e))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A write error means nft exited early; its status and stderr say why.
            let _ = stdin.write_all(script.as_bytes());
        }
        let out = child.wait_with_output().map_err(|source| Error::Io {
            tool: "nft",
            source,
        })?;
        if out.status.success() {
            Ok(started.elapsed())
        } else {
            Err(classify(&String::from_utf8_lossy(&out.stderr)))
        }
    }

    /// Runs `nft -j <args>` and returns its parsed output.
    pub(crate) fn list_json(&self, args: &[&str]) -> Result<serde_json::Value, Error> {
        let out = self
            .command()
            .arg("-j")
            .args(args)
            .output()
            .map_err(|e| self.spawn_error(e))?;
        if !out.status.success() {
            return Err(classify(&String::from_utf8_lossy(&out.stderr)));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| Error::Nft {
            detail: format!("unreadable JSON from nft {}: {e}", args.join(" ")),
        })
    }

    /// `nft list table inet <table>` as text.
    pub(crate) fn list_text(&self, table: &str) -> Result<String, Error> {
        let out = self
            .command()
            .args(["list", "table", "inet", table])
            .output()
            .map_err(|e| self.spawn_error(e))?;
        if !out.status.success() {
            return Err(classify(&String::from_utf8_lossy(&out.stderr)));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn command(&self) -> Command {
        Command::new(&self.path)
    }

    fn spawn_error(&self, source: std::io::Error) -> Error {
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::NftMissing {
                path: self.path.clone(),
            }
        } else {
            Error::Io {
                tool: "nft",
                source,
            }
        }
    }
}

/// Maps what nft printed on failure to the error a user can act on.
pub(crate) fn classify(stderr: &str) -> Error {
    let detail = stderr
        .trim()
        .lines()
        .take(6)
        .collect::<Vec<_>>()
        .join(" | ");
    if stderr.contains("Operation not permitted") {
        Error::NotPermitted { detail }
    } else if stderr.contains("Protocol not supported")
        || stderr.contains("Could not process rule: No such file or directory")
            && stderr.contains("nat")
        || stderr.contains("Address family not supported")
    {
        Error::NoNfTables { detail }
    } else {
        Error::Nft { detail }
    }
}

/// The addresses in a `nft -j list set` answer: elements are plain strings, or objects
/// `{"elem": {"val": "...", "timeout": .., "expires": ..}}` in sets with timeouts.
pub(crate) fn set_elements(json: &serde_json::Value) -> Vec<IpAddr> {
    let sets = json["nftables"].as_array().into_iter().flatten();
    sets.filter_map(|o| o["set"]["elem"].as_array())
        .flatten()
        .filter_map(|e| e.as_str().or_else(|| e["elem"]["val"].as_str()))
        .filter_map(|s| s.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn failures_are_classified() {
        assert!(matches!(
            classify("netlink: Error: cache initialization failed: Operation not permitted"),
            Error::NotPermitted { .. }
        ));
        assert!(matches!(
            classify("Error: Could not process rule: Protocol not supported"),
            Error::NoNfTables { .. }
        ));
        assert!(matches!(
            classify("Error: syntax error, unexpected '}'"),
            Error::Nft { .. }
        ));
    }

    #[test]
    fn a_missing_tool_is_named() {
        let nft = Nft::new(PathBuf::from("/nonexistent/nft"));
        match nft.apply("list tables") {
            Err(Error::NftMissing { path }) => assert_eq!(path, Path::new("/nonexistent/nft")),
            other => panic!("expected NftMissing, got {other:?}"),
        }
    }

    #[test]
    fn set_elements_are_read_in_both_forms() {
        let json: serde_json::Value = serde_json::from_str(
            r#"{"nftables": [{"metainfo": {}}, {"set": {"name": "s", "elem": ["198.18.0.10", {"elem": {"val": "2001:2::10", "timeout": 30, "expires": 29}}]}}]}"#,
        )
        .unwrap();
        assert_eq!(
            set_elements(&json),
            vec![
                "198.18.0.10".parse::<IpAddr>().unwrap(),
                "2001:2::10".parse().unwrap()
            ]
        );
    }
}
