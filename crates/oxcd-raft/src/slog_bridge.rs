//! Sends raft-rs's slog records to `tracing`, so the server has one logging path.

use slog::{Drain, Level, OwnedKVList, Record, KV};

struct TracingDrain;

struct FieldCollector(String);

impl slog::Serializer for FieldCollector {
    fn emit_arguments(&mut self, key: slog::Key, val: &std::fmt::Arguments) -> slog::Result {
        use std::fmt::Write;
        let _ = write!(self.0, " {key}={val}");
        Ok(())
    }
}

impl Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<(), slog::Never> {
        let mut fields = FieldCollector(String::new());
        let _ = record.kv().serialize(record, &mut fields);
        let _ = values.serialize(record, &mut fields);
        let msg = record.msg();
        let extra = fields.0;
        match record.level() {
            Level::Critical | Level::Error => {
                tracing::error!(target: "oxcd_raft::raft", "{msg}{extra}")
            }
            Level::Warning => tracing::warn!(target: "oxcd_raft::raft", "{msg}{extra}"),
            Level::Info => tracing::info!(target: "oxcd_raft::raft", "{msg}{extra}"),
            Level::Debug | Level::Trace => {
                tracing::debug!(target: "oxcd_raft::raft", "{msg}{extra}")
            }
        }
        Ok(())
    }
}

pub fn logger() -> slog::Logger {
    slog::Logger::root(TracingDrain.fuse(), slog::o!())
}
