//! Builders shared by the integration tests.
#![allow(dead_code)] // each test binary uses a different subset

pub mod sim;

use oxcd_lincheck::{Event, EventKind, Input, Operation, Output};

pub fn get(
    client: u32,
    call: u64,
    ret: u64,
    key: &str,
    value: Option<&str>,
    rev: Option<i64>,
) -> Operation {
    Operation {
        client,
        call_ns: call,
        return_ns: Some(ret),
        input: Input::Get { key: key.into() },
        output: Output::Get {
            value: value.map(Into::into),
            mod_revision: rev,
        },
    }
}

pub fn put(client: u32, call: u64, ret: u64, key: &str, value: &str, rev: i64) -> Operation {
    Operation {
        client,
        call_ns: call,
        return_ns: Some(ret),
        input: Input::Put {
            key: key.into(),
            value: value.into(),
        },
        output: Output::Put { revision: rev },
    }
}

pub fn put_unknown(client: u32, call: u64, key: &str, value: &str) -> Operation {
    Operation {
        client,
        call_ns: call,
        return_ns: None,
        input: Input::Put {
            key: key.into(),
            value: value.into(),
        },
        output: Output::Unknown,
    }
}

pub fn delete(client: u32, call: u64, ret: u64, key: &str, deleted: i64, rev: i64) -> Operation {
    Operation {
        client,
        call_ns: call,
        return_ns: Some(ret),
        input: Input::Delete { key: key.into() },
        output: Output::Delete {
            deleted,
            revision: rev,
        },
    }
}

pub fn delete_unknown(client: u32, call: u64, key: &str) -> Operation {
    Operation {
        client,
        call_ns: call,
        return_ns: None,
        input: Input::Delete { key: key.into() },
        output: Output::Unknown,
    }
}

#[allow(clippy::too_many_arguments)]
pub fn cas(
    client: u32,
    call: u64,
    ret: u64,
    key: &str,
    expect: Option<&str>,
    value: &str,
    succeeded: bool,
    rev: i64,
) -> Operation {
    Operation {
        client,
        call_ns: call,
        return_ns: Some(ret),
        input: Input::CompareAndSet {
            key: key.into(),
            expect: expect.map(Into::into),
            value: value.into(),
        },
        output: Output::CompareAndSet {
            succeeded,
            revision: rev,
        },
    }
}

pub fn cas_unknown(
    client: u32,
    call: u64,
    key: &str,
    expect: Option<&str>,
    value: &str,
) -> Operation {
    Operation {
        client,
        call_ns: call,
        return_ns: None,
        input: Input::CompareAndSet {
            key: key.into(),
            expect: expect.map(Into::into),
            value: value.into(),
        },
        output: Output::Unknown,
    }
}

/// Builds a consistent reference event history from a sequence of changes, one revision each
/// (starting at 2, like a fresh etcd), filling in create_revision, version and prev_value.
#[derive(Default)]
pub struct ReferenceBuilder {
    revision: i64,
    live: std::collections::HashMap<String, (i64, i64, String)>,
    pub events: Vec<Event>,
}

impl ReferenceBuilder {
    pub fn new() -> Self {
        ReferenceBuilder {
            revision: 1,
            ..Default::default()
        }
    }

    pub fn put(&mut self, key: &str, value: &str) -> &mut Self {
        self.revision += 1;
        let rev = self.revision;
        self.put_at(rev, key, value)
    }

    pub fn delete(&mut self, key: &str) -> &mut Self {
        self.revision += 1;
        let rev = self.revision;
        self.delete_at(rev, key)
    }

    /// Several changes in one revision, like a txn.
    pub fn txn(&mut self, changes: &[(&str, Option<&str>)]) -> &mut Self {
        self.revision += 1;
        let rev = self.revision;
        for &(key, value) in changes {
            match value {
                Some(value) => self.put_at(rev, key, value),
                None => self.delete_at(rev, key),
            };
        }
        self
    }

    fn put_at(&mut self, rev: i64, key: &str, value: &str) -> &mut Self {
        let prev = self.live.get(key).cloned();
        let (create, version) = match &prev {
            Some((create, version, _)) => (*create, version + 1),
            None => (rev, 1),
        };
        self.live
            .insert(key.into(), (create, version, value.into()));
        self.events.push(Event {
            revision: rev,
            key: key.into(),
            kind: EventKind::Put,
            value: Some(value.into()),
            create_revision: create,
            mod_revision: rev,
            version,
            prev_value: prev.map(|(_, _, v)| v),
        });
        self
    }

    fn delete_at(&mut self, rev: i64, key: &str) -> &mut Self {
        let prev = self.live.remove(key);
        self.events.push(Event {
            revision: rev,
            key: key.into(),
            kind: EventKind::Delete,
            value: None,
            create_revision: 0,
            mod_revision: rev,
            version: 0,
            prev_value: prev.map(|(_, _, v)| v),
        });
        self
    }
}
