//! `oxcd` with no flags: one member, data in `default.etcd`, clients on 127.0.0.1:2379.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[test]
fn no_flags_serves_on_the_default_address() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("oxcd.log");
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let ok = wait_until(Duration::from_secs(30), || {
        etcdctl("http://127.0.0.1:2379", &["put", "hello", "world"])
            .status
            .success()
    });
    let published = wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("published")
    });
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "no answer on 127.0.0.1:2379:\n{text}");
    assert!(
        dir.path().join("default.etcd/member/wal").is_dir(),
        "{text}"
    );
    assert!(published, "{text}");
}
