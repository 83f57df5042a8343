//! Watch through etcdctl 3.4 against a three-member cluster on 127.0.0.41-43: the output must be
//! what etcdctl prints against etcd 3.4 (checked by hand against etcd 3.4.23). Watches go to one
//! member while writes go through another, so events travel through raft to the watcher.

mod common;

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use common::*;

const CLUSTER: &str =
    "w0=http://127.0.0.41:2380,w1=http://127.0.0.42:2380,w2=http://127.0.0.43:2380";
const SEEN: Duration = Duration::from_secs(15);

fn start_cluster(dir: &Path) -> Vec<Member> {
    start_static_cluster(
        dir,
        "w",
        ["127.0.0.41", "127.0.0.42", "127.0.0.43"],
        CLUSTER,
        "watch-cluster",
    )
}

/// A running `etcdctl watch`, its output going to files.
struct WatchProc {
    child: Child,
    stdin: Option<ChildStdin>,
    out: PathBuf,
    err: PathBuf,
}

impl WatchProc {
    fn spawn(dir: &Path, name: &str, endpoint: &str, args: &[&str]) -> WatchProc {
        let out = dir.join(format!("{name}.out"));
        let err = dir.join(format!("{name}.err"));
        let mut child = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg("--endpoints")
            .arg(endpoint)
            .arg("watch")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap())
            .spawn()
            .expect("etcdctl must be installed");
        let stdin = child.stdin.take();
        WatchProc {
            child,
            stdin,
            out,
            err,
        }
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Waits until the output is exactly `expected`; fails with both outputs otherwise. (Later
    /// checks compare the whole output again, so anything extra shows up there.)
    fn expect_stdout(&self, expected: &str) {
        let ok = wait_until(SEEN, || self.stdout() == expected);
        assert!(
            ok,
            "stdout:\n{}\nwanted:\n{expected}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
    }

    /// Waits until the output is `head` followed by the lines of `tail` in any order: in an
    /// interactive session etcdctl prints each watcher's events from a goroutine of its own,
    /// line by line, so two watchers' lines may interleave.
    fn expect_stdout_after(&self, head: &str, tail: &str) {
        let sorted = |t: &str| {
            let mut lines: Vec<String> = t.lines().map(str::to_owned).collect();
            lines.sort();
            lines
        };
        let wanted = sorted(tail);
        let ok = wait_until(SEEN, || {
            let out = self.stdout();
            out.len() == head.len() + tail.len()
                && out.starts_with(head)
                && sorted(&out[head.len()..]) == wanted
        });
        assert!(
            ok,
            "stdout:\n{}\nwanted {head:?} and then, in any order:\n{tail}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
    }

    /// Waits for the process to exit; its exit code.
    fn wait_exit(&mut self) -> Option<i32> {
        let mut code = None;
        let exited = wait_until(SEEN, || match self.child.try_wait() {
            Ok(Some(s)) => {
                code = s.code();
                true
            }
            _ => false,
        });
        assert!(
            exited,
            "etcdctl did not exit; stdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        code
    }
}

impl Drop for WatchProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Puts `key=probe-N` until every watcher shows it: afterwards, each watch is established.
/// Returns the output length of each watcher after the probe, the probe's value and revision.
fn probe(eps: &str, key: &str, watchers: &[&WatchProc]) -> (Vec<usize>, String, i64) {
    for n in 0..20 {
        let value = format!("probe-{n}");
        let rev = revision_of(&etcdctl_ok(eps, &["put", key, &value, "-w", "json"]));
        let needle = format!("{key}\n{value}\n");
        if wait_until(Duration::from_secs(2), || {
            watchers.iter().all(|w| w.stdout().contains(&needle))
        }) {
            // Let every watcher print the whole probe event before measuring.
            assert!(wait_until(SEEN, || watchers
                .iter()
                .all(|w| w.stdout().ends_with(&needle))));
            return (
                watchers.iter().map(|w| w.stdout().len()).collect(),
                value,
                rev,
            );
        }
    }
    panic!("watchers never saw {key}");
}

fn revision_of(json: &str) -> i64 {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v["header"]["revision"].as_i64().unwrap()
}

#[test]
fn etcdctl_watch_matches_etcd() {
    let dir = tempfile::tempdir().unwrap();
    let members = start_cluster(dir.path());
    let watch_ep = &members[0].client_url();
    let write_ep = &members[2].client_url();
    let d = dir.path();
    single_key_prefix_prev_kv_and_json(d, watch_ep, write_ep);
    interactive(d, &members[1].client_url(), write_ep);
    start_revisions_and_refusals(d, &members, watch_ep, write_ep);
    lost_leader(d, members);
}

/// Without a leader, etcdctl's watches (which require one) end, and new ones are refused.
fn lost_leader(d: &Path, mut members: Vec<Member>) {
    let ep = members[0].client_url();
    let mut running = WatchProc::spawn(d, "leaderless", &ep, &["foo"]);
    probe(&ep, "foo", &[&running]);
    members[1].kill();
    members[2].kill();
    let canceled =
        "watch was canceled (etcdserver: no leader)\nError: watch is canceled by the server\n";
    assert_eq!(running.wait_exit(), Some(5));
    assert_eq!(running.stderr(), canceled);
    let mut refused = WatchProc::spawn(d, "refused", &ep, &["foo"]);
    assert_eq!(refused.wait_exit(), Some(5));
    assert_eq!(refused.stderr(), canceled);
}

fn single_key_prefix_prev_kv_and_json(d: &Path, watch_ep: &str, write_ep: &str) {
    // watch foo / --prefix / --prev-kv / -w json, all on member w0
    let plain = WatchProc::spawn(d, "plain", watch_ep, &["foo"]);
    let prefix = WatchProc::spawn(d, "prefix", watch_ep, &["--prefix", "fo"]);
    let prev = WatchProc::spawn(d, "prev", watch_ep, &["--prev-kv", "foo"]);
    let (marks, probe_value, probe_rev) = probe(write_ep, "foo", &[&plain, &prefix, &prev]);
    // JSON output shows values in base64: start it right after the probe instead.
    let json = WatchProc::spawn(
        d,
        "json",
        watch_ep,
        &["-w", "json", "--rev", &(probe_rev + 1).to_string(), "foo"],
    );

    etcdctl_ok(write_ep, &["put", "foo", "bar"]);
    etcdctl_ok(write_ep, &["put", "fox", "baz"]);
    etcdctl_ok(write_ep, &["put", "other", "x"]);
    assert_eq!(etcdctl_ok(write_ep, &["del", "foo"]).trim(), "1");
    etcdctl_ok(write_ep, &["put", "foo", "multi\nline"]);

    let before = |w: &WatchProc, i: usize| w.stdout()[..marks[i]].to_string();
    plain.expect_stdout(
        &(before(&plain, 0) + "PUT\nfoo\nbar\nDELETE\nfoo\n\nPUT\nfoo\nmulti\nline\n"),
    );
    prefix.expect_stdout(
        &(before(&prefix, 1)
            + "PUT\nfoo\nbar\nPUT\nfox\nbaz\nDELETE\nfoo\n\nPUT\nfoo\nmulti\nline\n"),
    );
    // With --prev-kv etcdctl prints the previous pair before the new one; a delete shows the
    // deleted value; a re-created key has none.
    prev.expect_stdout(
        &(before(&prev, 2)
            + &format!("PUT\nfoo\n{probe_value}\nfoo\nbar\nDELETE\nfoo\nbar\nfoo\n\nPUT\nfoo\nmulti\nline\n")),
    );
    // JSON: one line per response; headers carry the cluster, the member and the revision.
    assert!(
        wait_until(SEEN, || json.stdout().lines().count() == 3),
        "{}",
        json.stdout()
    );
    let lines: Vec<serde_json::Value> = json
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let status: serde_json::Value =
        serde_json::from_str(&etcdctl_ok(watch_ep, &["endpoint", "status", "-w", "json"])).unwrap();
    let header = &status[0]["Status"]["header"];
    for l in &lines {
        assert_eq!(l["Header"]["cluster_id"], header["cluster_id"], "{l}");
        assert_eq!(l["Header"]["member_id"], header["member_id"], "{l}");
        assert!(l["Header"]["raft_term"].as_u64().unwrap() >= 1, "{l}");
        assert_eq!(
            (l["Canceled"].as_bool(), l["Created"].as_bool()),
            (Some(false), Some(false)),
            "{l}"
        );
    }
    assert_eq!(lines[1]["Events"][0]["type"], 1, "a delete: {}", lines[1]);
    assert_eq!(lines[1]["Events"][0]["kv"]["key"], "Zm9v");
    assert_eq!(
        lines[1]["Header"]["revision"], lines[1]["Events"][0]["kv"]["mod_revision"],
        "{}",
        lines[1]
    );
    assert_eq!(lines[2]["Events"][0]["kv"]["value"], "bXVsdGkKbGluZQ==");
    assert_eq!(lines[2]["Events"][0]["kv"]["version"], 1);
}

fn start_revisions_and_refusals(d: &Path, members: &[Member], watch_ep: &str, write_ep: &str) {
    // --rev: history from a past revision, then live events.
    let h1 = revision_of(&etcdctl_ok(write_ep, &["put", "hist", "h1", "-w", "json"]));
    let h2 = revision_of(&etcdctl_ok(write_ep, &["put", "hist", "h2", "-w", "json"]));
    etcdctl_ok(write_ep, &["put", "hist", "h3"]);
    assert_eq!(h2, h1 + 1);
    let from_rev = WatchProc::spawn(d, "rev", watch_ep, &["--rev", &h2.to_string(), "hist"]);
    from_rev.expect_stdout("PUT\nhist\nh2\nPUT\nhist\nh3\n");
    etcdctl_ok(write_ep, &["put", "hist", "h4"]);
    from_rev.expect_stdout("PUT\nhist\nh2\nPUT\nhist\nh3\nPUT\nhist\nh4\n");
    let from_first = WatchProc::spawn(
        d,
        "rev1",
        &members[1].client_url(),
        &["--rev", "1", "--prefix", "hist"],
    );
    from_first.expect_stdout("PUT\nhist\nh1\nPUT\nhist\nh2\nPUT\nhist\nh3\nPUT\nhist\nh4\n");

    // A compacted start revision: etcdctl reports the cancellation and exits with status 5.
    let now = revision_of(&etcdctl_ok(write_ep, &["get", "hist", "-w", "json"]));
    assert_eq!(
        etcdctl_ok(write_ep, &["compact", &now.to_string()]).trim(),
        format!("compacted revision {now}")
    );
    let mut compacted = WatchProc::spawn(
        d,
        "compacted",
        watch_ep,
        &["--rev", &h1.to_string(), "hist"],
    );
    assert_eq!(compacted.wait_exit(), Some(5));
    assert_eq!(compacted.stdout(), "");
    assert_eq!(
        compacted.stderr(),
        "watch was canceled (etcdserver: mvcc: required revision has been compacted)\nError: watch is canceled by the server\n"
    );
    // An empty range is refused the same way, with etcd's reason.
    let mut empty = WatchProc::spawn(d, "empty", watch_ep, &["zz", "aa"]);
    assert_eq!(empty.wait_exit(), Some(5));
    assert_eq!(empty.stderr(), "watch was canceled (mvcc: watcher range is empty)\nError: watch is canceled by the server\n");
}

/// `watch -i`: watch commands read from standard input, progress requests included.
fn interactive(d: &Path, watch_ep: &str, write_ep: &str) {
    let mut w = WatchProc::spawn(d, "interactive", watch_ep, &["-i"]);
    w.type_line("watch foo");
    w.type_line("watch --prefix fo");
    // Both watchers print each probe once the two watches are established.
    let mut n = 0;
    let mark = loop {
        let value = format!("iprobe-{n}");
        etcdctl_ok(write_ep, &["put", "foo", &value]);
        let twice = format!("PUT\nfoo\n{value}\nPUT\nfoo\n{value}\n");
        if wait_until(Duration::from_secs(2), || w.stdout().ends_with(&twice)) {
            break w.stdout().len();
        }
        n += 1;
        assert!(
            n < 20,
            "interactive watchers never saw the probe:\n{}",
            w.stdout()
        );
    };
    let head = w.stdout()[..mark].to_string();
    etcdctl_ok(write_ep, &["put", "foo", "i1"]);
    let rev = revision_of(&etcdctl_ok(write_ep, &["put", "fox", "i2", "-w", "json"]));
    let events = "PUT\nfoo\ni1\nPUT\nfoo\ni1\nPUT\nfox\ni2\n";
    w.expect_stdout_after(&head, events);
    // A progress request is answered once for each watcher of the stream, at the revision
    // both have reached.
    w.type_line("progress");
    w.expect_stdout_after(
        &head,
        &format!("{events}progress notify: {rev}\nprogress notify: {rev}\n"),
    );
    w.type_line("bogus");
    w.type_line("watch");
    // End of input ends etcdctl with its error (exit status 3, invalid input).
    w.stdin = None;
    assert_eq!(w.wait_exit(), Some(3), "stderr: {}", w.stderr());
    assert_eq!(
        w.stderr(),
        "Invalid command bogus (only support watch)\n\
         Invalid command watch (command type or key is not provided)\n\
         Error: Error reading watch request line: EOF\n"
    );
}
