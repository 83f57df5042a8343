//! Test harness: real `oxcd` processes on loopback addresses, driven with the real etcdctl.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_oxcd");

pub struct Member {
    pub name: String,
    pub ip: String,
    pub args: Vec<String>,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Member {
    pub fn client_url(&self) -> String {
        format!("http://{}:2379", self.ip)
    }

    pub fn peer_url(&self) -> String {
        format!("http://{}:2380", self.ip)
    }

    /// A member of a static cluster, configured like the Clustering Guide's example.
    pub fn static_member(
        dir: &Path,
        name: &str,
        ip: &str,
        initial_cluster: &str,
        token: &str,
    ) -> Member {
        let data_dir = dir.join(format!("{name}.etcd"));
        let args = vec![
            "--name".into(),
            name.into(),
            "--initial-advertise-peer-urls".into(),
            format!("http://{ip}:2380"),
            "--listen-peer-urls".into(),
            format!("http://{ip}:2380"),
            "--listen-client-urls".into(),
            format!("http://{ip}:2379"),
            "--advertise-client-urls".into(),
            format!("http://{ip}:2379"),
            "--initial-cluster-token".into(),
            token.into(),
            "--initial-cluster".into(),
            initial_cluster.into(),
            "--initial-cluster-state".into(),
            "new".into(),
            "--data-dir".into(),
            data_dir.display().to_string(),
        ];
        Member {
            name: name.into(),
            ip: ip.into(),
            args,
            log: dir.join(format!("{name}.log")),
            data_dir,
            child: None,
        }
    }

    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = Command::new(BIN)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start oxcd");
        self.child = Some(child);
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle` `count` times.
    pub fn wait_log(&self, needle: &str, count: usize, timeout: Duration) -> bool {
        wait_until(timeout, || self.log_text().matches(needle).count() >= count)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts a three-member static cluster (members `<prefix>0..2` on `ips`, whose
/// `--initial-cluster` is `initial_cluster`) and waits until every member is ready, as the e2e
/// harness does.
pub fn start_static_cluster(
    dir: &Path,
    prefix: &str,
    ips: [&str; 3],
    initial_cluster: &str,
    token: &str,
) -> Vec<Member> {
    let ready = Duration::from_secs(30);
    let mut members: Vec<Member> = ips
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            Member::static_member(dir, &format!("{prefix}{i}"), ip, initial_cluster, token)
        })
        .collect();
    for m in &mut members {
        m.start();
    }
    for m in &members {
        assert!(
            m.wait_log("published", 1, ready)
                && m.wait_log("enabled capabilities for version", 1, ready),
            "{} did not become ready:\n{}",
            m.name,
            m.log_text()
        );
    }
    members
}

pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

pub fn etcdctl(endpoints: &str, args: &[&str]) -> Output {
    Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg("--endpoints")
        .arg(endpoints)
        .arg("--command-timeout=10s")
        .args(args)
        .output()
        .expect("etcdctl must be installed (apt-get install etcd-client)")
}

/// etcdctl with `input` on stdin (for `txn`, which reads its compares and ops interactively).
pub fn etcdctl_stdin(endpoints: &str, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg("--endpoints")
        .arg(endpoints)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("etcdctl must be installed (apt-get install etcd-client)");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    child.wait_with_output().expect("etcdctl")
}

pub fn etcdctl_ok(endpoints: &str, args: &[&str]) -> String {
    let out = etcdctl(endpoints, args);
    assert!(
        out.status.success(),
        "etcdctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs oxcd to completion (for start-up errors) and returns (exit code, stderr).
pub fn run_to_exit(args: &[String], timeout: Duration) -> (Option<i32>, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start oxcd");
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
