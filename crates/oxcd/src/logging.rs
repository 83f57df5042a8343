//! Log output in etcd's two formats, behind `tracing`.
//!
//! * `--logger capnslog` (etcd 3.4's default): `YYYY-MM-DD HH:MM:SS.ffffff L | <pkg>: <text>`,
//!   L = C/E/W/N/I/D. The level letter comes from the tracing level (ERROR→E, WARN→W, INFO→I,
//!   DEBUG/TRACE→D); an INFO event with the field `notice = true` prints as N. `<pkg>` is the
//!   `pkg` field if the event has one, else the last `::` segment of the event's target.
//!   Other fields follow the text as ` key=value`.
//! * `--logger zap`: one JSON object per line with `level`, `ts`, `caller`, `msg` and the
//!   event's fields.
//!
//! `--log-level` (or `--debug`) sets the minimum level; `--log-outputs` picks stderr
//! (`default`, `stderr`, `systemd/journal`), stdout, or files (appended). Times are UTC.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Mutex, OnceLock};

use oxcd_bootstrap::{Config, Logger};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::{filter::LevelFilter, Layer};

enum Output {
    Stderr,
    Stdout,
    File(Mutex<std::fs::File>),
}

/// Where and how lines are written.
pub struct Sink {
    zap: bool,
    outputs: Vec<Output>,
}

static SINK: OnceLock<Sink> = OnceLock::new();

impl Sink {
    fn new(cfg: &Config) -> Sink {
        let mut outputs = Vec::new();
        for o in &cfg.log_outputs {
            match o.as_str() {
                "default" | "stderr" | "systemd/journal" => {
                    if !outputs.iter().any(|x| matches!(x, Output::Stderr)) {
                        outputs.push(Output::Stderr)
                    }
                }
                "stdout" => outputs.push(Output::Stdout),
                path => match std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                {
                    Ok(f) => outputs.push(Output::File(Mutex::new(f))),
                    Err(e) => eprintln!("cannot open log output {path:?}: {e}"),
                },
            }
        }
        if outputs.is_empty() {
            outputs.push(Output::Stderr);
        }
        Sink {
            zap: cfg.logger == Logger::Zap,
            outputs,
        }
    }

    fn stderr_capnslog() -> Sink {
        Sink {
            zap: false,
            outputs: vec![Output::Stderr],
        }
    }

    fn write_line(&self, line: &str) {
        for o in &self.outputs {
            let _ = match o {
                Output::Stderr => writeln!(std::io::stderr().lock(), "{line}"),
                Output::Stdout => writeln!(std::io::stdout().lock(), "{line}"),
                Output::File(f) => match f.lock() {
                    Ok(mut f) => writeln!(f, "{line}"),
                    Err(_) => Ok(()),
                },
            };
        }
    }

    /// Writes one record. `level` is a capnslog letter.
    fn emit(
        &self,
        level: char,
        pkg: &str,
        caller: &str,
        msg: &str,
        fields: &[(String, serde_json::Value)],
    ) {
        let line = if self.zap {
            zap_line(level, caller, msg, fields)
        } else {
            capnslog_line(level, pkg, msg, fields)
        };
        self.write_line(&line);
    }
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// `2026-01-02 15:04:05.000000 I | pkg: text key=value`.
pub fn capnslog_line(
    level: char,
    pkg: &str,
    msg: &str,
    fields: &[(String, serde_json::Value)],
) -> String {
    let t = now();
    let mut s = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06} {level} | {pkg}: {msg}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    );
    for (k, v) in fields {
        match v {
            serde_json::Value::String(x) => {
                let _ = write!(s, " {k}={x}");
            }
            other => {
                let _ = write!(s, " {k}={other}");
            }
        }
    }
    s
}

fn zap_level(level: char) -> &'static str {
    match level {
        'C' => "fatal",
        'E' => "error",
        'W' => "warn",
        'D' => "debug",
        _ => "info",
    }
}

/// `{"level":"info","ts":"2026-01-02T15:04:05.000Z","caller":"x/y.rs:1","msg":"...",...}`.
pub fn zap_line(
    level: char,
    caller: &str,
    msg: &str,
    fields: &[(String, serde_json::Value)],
) -> String {
    let t = now();
    let ts = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    );
    let mut m = serde_json::Map::new();
    m.insert("level".into(), zap_level(level).into());
    m.insert("ts".into(), ts.into());
    m.insert("caller".into(), caller.into());
    m.insert("msg".into(), msg.into());
    for (k, v) in fields {
        m.insert(k.clone(), v.clone());
    }
    // serde_json keeps insertion order only with preserve_order; build the text by hand
    let mut s = String::from("{");
    let mut first = true;
    let mut push = |k: &str, v: &serde_json::Value| {
        if !first {
            s.push(',');
        }
        first = false;
        let _ = write!(s, "{}:{}", serde_json::Value::from(k), v);
    };
    for k in ["level", "ts", "caller", "msg"] {
        push(k, &m[k]);
    }
    for (k, v) in fields {
        if !matches!(k.as_str(), "level" | "ts" | "caller" | "msg") {
            push(k, v);
        }
    }
    s.push('}');
    s
}

/// Writes a record outside `tracing` (used before and without the subscriber, and for
/// critical lines). Uses the configured sink once [`init`] ran, else stderr capnslog.
pub fn emit(level: char, pkg: &str, msg: &str) {
    match SINK.get() {
        Some(s) => s.emit(level, pkg, &format!("{pkg}/main"), msg, &[]),
        None => Sink::stderr_capnslog().emit(level, pkg, "", msg, &[]),
    }
}

/// Writes a record with the sink `cfg` describes, whether or not [`init`] ran.
pub fn emit_for(cfg: &Config, level: char, pkg: &str, msg: &str) {
    match SINK.get() {
        Some(s) => s.emit(level, pkg, &format!("{pkg}/main"), msg, &[]),
        None => Sink::new(cfg).emit(level, pkg, &format!("{pkg}/main"), msg, &[]),
    }
}

/// A critical (`C`) line; in zap mode a `fatal` record.
pub fn critical(pkg: &str, msg: &str) {
    emit('C', pkg, msg);
}

fn level_filter(cfg: &Config) -> LevelFilter {
    if cfg.debug {
        return LevelFilter::DEBUG;
    }
    match cfg.log_level.as_str() {
        "debug" => LevelFilter::DEBUG,
        "info" => LevelFilter::INFO,
        "warn" => LevelFilter::WARN,
        _ => LevelFilter::ERROR,
    }
}

#[derive(Default)]
struct Fields {
    msg: String,
    pkg: Option<String>,
    notice: bool,
    rest: Vec<(String, serde_json::Value)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.msg = value.to_string(),
            "pkg" => self.pkg = Some(value.to_string()),
            n => self.rest.push((n.to_string(), value.into())),
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        match field.name() {
            "notice" => self.notice = value,
            n => self.rest.push((n.to_string(), value.into())),
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.rest.push((field.name().to_string(), value.into()));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.rest.push((field.name().to_string(), value.into()));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.rest.push((field.name().to_string(), value.into()));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.rest
            .push((field.name().to_string(), value.to_string().into()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        match field.name() {
            "message" => self.msg = text,
            "pkg" => self.pkg = Some(text.trim_matches('"').to_string()),
            n => self.rest.push((n.to_string(), text.into())),
        }
    }
}

struct EtcdLayer;

impl<S: Subscriber> Layer<S> for EtcdLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let Some(sink) = SINK.get() else { return };
        let meta = event.metadata();
        let mut f = Fields::default();
        event.record(&mut f);
        let level = match *meta.level() {
            Level::ERROR => 'E',
            Level::WARN => 'W',
            Level::INFO if f.notice => 'N',
            Level::INFO => 'I',
            _ => 'D',
        };
        let pkg = f
            .pkg
            .clone()
            .unwrap_or_else(|| meta.target().rsplit("::").next().unwrap_or("").to_string());
        let caller = match (meta.file(), meta.line()) {
            (Some(file), Some(line)) => {
                let parts: Vec<&str> = file.rsplit('/').take(2).collect();
                let short: Vec<&str> = parts.into_iter().rev().collect();
                format!("{}:{line}", short.join("/"))
            }
            _ => meta.target().to_string(),
        };
        sink.emit(level, &pkg, &caller, &f.msg, &f.rest);
    }
}

/// Installs the global `tracing` subscriber for `cfg` (idempotent: later calls do nothing).
pub fn init(cfg: &Config) {
    if SINK.set(Sink::new(cfg)).is_err() {
        return;
    }
    let subscriber = tracing_subscriber::registry().with(EtcdLayer.with_filter(level_filter(cfg)));
    let _ = tracing::subscriber::set_global_default(subscriber);
}
