//! The recorded client history: one [`Operation`] per request a client sent.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// One client request and what the client saw of it.
///
/// Times are nanoseconds on one clock shared by all clients of the run (e.g. since the harness
/// started); only their order matters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// Which client sent it. Informational: a client is expected to have one request in flight
    /// at a time, but the checker relies only on the times.
    pub client: u32,
    /// When the request was sent.
    pub call_ns: u64,
    /// When the response arrived; `None` when the outcome is unknown (timeout, connection
    /// lost): the request may take effect at any point after `call_ns`, or never.
    pub return_ns: Option<u64>,
    pub input: Input,
    pub output: Output,
}

/// What a client asked for. Every request touches exactly one key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    Get {
        key: String,
    },
    Put {
        key: String,
        value: String,
    },
    Delete {
        key: String,
    },
    /// A txn: if value(key) == expect (`None` = key absent) then put(key, value).
    CompareAndSet {
        key: String,
        expect: Option<String>,
        value: String,
    },
}

impl Input {
    pub fn key(&self) -> &str {
        match self {
            Input::Get { key }
            | Input::Put { key, .. }
            | Input::Delete { key }
            | Input::CompareAndSet { key, .. } => key,
        }
    }

    /// The value this request writes, if it is a write that carries one.
    pub fn written_value(&self) -> Option<&str> {
        match self {
            Input::Put { value, .. } | Input::CompareAndSet { value, .. } => Some(value),
            Input::Get { .. } | Input::Delete { .. } => None,
        }
    }
}

/// What the client got back. The variant must match the [`Input`] variant, except
/// [`Output::Unknown`], which any write may have.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Output {
    /// `mod_revision` of the returned kv; both `None` when the key was absent.
    Get {
        value: Option<String>,
        mod_revision: Option<i64>,
    },
    /// The response header revision, which is the put's mod_revision.
    Put { revision: i64 },
    /// The header revision; when `deleted == 1` it is the delete's revision.
    Delete { deleted: i64, revision: i64 },
    /// The header revision; when `succeeded` it is the put's mod_revision.
    CompareAndSet { succeeded: bool, revision: i64 },
    /// The request failed or timed out: it may or may not have taken effect. Use with
    /// `return_ns: None`; the checker treats it as never returning whatever `return_ns` says,
    /// because a request the client gave up on can still be applied later.
    Unknown,
}

impl Operation {
    /// True when the client knows the request's outcome. An op with a known output but no
    /// return time is still checked, as if it had returned at the end of the history.
    pub fn is_acknowledged(&self) -> bool {
        self.return_ns.is_some() && self.output != Output::Unknown
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client {} [{}, ", self.client, self.call_ns)?;
        match self.return_ns {
            Some(ret) => write!(f, "{ret}]")?,
            None => write!(f, "?]")?,
        }
        match &self.input {
            Input::Get { key } => write!(f, " get({key:?})")?,
            Input::Put { key, value } => write!(f, " put({key:?}, {value:?})")?,
            Input::Delete { key } => write!(f, " delete({key:?})")?,
            Input::CompareAndSet { key, expect, value } => {
                write!(f, " cas({key:?}, expect {expect:?}, {value:?})")?
            }
        }
        match &self.output {
            Output::Get {
                value,
                mod_revision,
            } => write!(f, " -> {value:?} mod_revision {mod_revision:?}"),
            Output::Put { revision } => write!(f, " -> revision {revision}"),
            Output::Delete { deleted, revision } => {
                write!(f, " -> deleted {deleted} revision {revision}")
            }
            Output::CompareAndSet {
                succeeded,
                revision,
            } => write!(f, " -> succeeded {succeeded} revision {revision}"),
            Output::Unknown => write!(f, " -> unknown"),
        }
    }
}

/// Saves a history as pretty-printed JSON, e.g. to attach a failing run to a bug report.
pub fn write_history_json(path: impl AsRef<Path>, history: &[Operation]) -> io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    serde_json::to_writer_pretty(&mut out, history)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Loads a history saved by [`write_history_json`].
pub fn read_history_json(path: impl AsRef<Path>) -> io::Result<Vec<Operation>> {
    let file = BufReader::new(File::open(path)?);
    Ok(serde_json::from_reader(file)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip() {
        let history = vec![
            Operation {
                client: 1,
                call_ns: 10,
                return_ns: Some(20),
                input: Input::CompareAndSet {
                    key: "k".into(),
                    expect: None,
                    value: "v".into(),
                },
                output: Output::CompareAndSet {
                    succeeded: true,
                    revision: 2,
                },
            },
            Operation {
                client: 2,
                call_ns: 15,
                return_ns: None,
                input: Input::Delete { key: "k".into() },
                output: Output::Unknown,
            },
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.json");
        write_history_json(&path, &history).unwrap();
        assert_eq!(read_history_json(&path).unwrap(), history);
    }
}
