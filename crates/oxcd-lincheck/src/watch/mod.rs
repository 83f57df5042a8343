//! Watch streams: what a watcher received, and the checks against the store's full history.

mod reference;
mod stream;

use serde::{Deserialize, Serialize};

pub use reference::check_reference;
pub(crate) use reference::values_before;
pub use stream::check_watch;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    Put,
    Delete,
}

/// One watch event, as etcd sends it. For a delete, etcd's kv carries only the key and
/// `mod_revision` (the delete's revision): `value` None (or empty), `create_revision` and
/// `version` 0.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The revision of the change; several events share one when a txn changed several keys.
    pub revision: i64,
    pub key: String,
    pub kind: EventKind,
    pub value: Option<String>,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
    /// The value of prev_kv, when the watch asked for it (`None` if the key did not exist).
    pub prev_value: Option<String>,
}

/// Everything one watcher received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchLog {
    pub watcher: u32,
    /// The watched key prefix ("" = every key).
    pub prefix: String,
    /// The revision the watch started from. etcd's 0 ("from now on") is accepted, but then a
    /// gap before the first received event cannot be detected.
    pub start_revision: i64,
    /// Whether the watch asked for prev_kv.
    pub prev_kv: bool,
    /// In the order received.
    pub events: Vec<Event>,
}
