//! Leases through etcdctl 3.4 against a three-member cluster on 127.0.0.61-63. Output formats
//! were checked by hand against etcd 3.4.23. Requests go to followers as well as the leader,
//! so renewals and time-to-live questions are forwarded over the peer port.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const CLUSTER: &str =
    "l0=http://127.0.0.61:2380,l1=http://127.0.0.62:2380,l2=http://127.0.0.63:2380";

fn start_cluster(dir: &Path) -> Vec<Member> {
    start_static_cluster(
        dir,
        "l",
        ["127.0.0.61", "127.0.0.62", "127.0.0.63"],
        CLUSTER,
        "lease-cluster",
    )
}

/// Index of the current leader among `members` (only those in `alive` are asked).
fn leader(members: &[Member], alive: &[usize]) -> Option<usize> {
    for &i in alive {
        let out = etcdctl(
            &members[i].client_url(),
            &["endpoint", "status", "-w", "json"],
        );
        if !out.status.success() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let status = &v[0]["Status"];
        let (me, lead) = (
            status["header"]["member_id"].as_u64(),
            status["leader"].as_u64(),
        );
        if me.is_some() && me == lead {
            return Some(i);
        }
    }
    None
}

/// `lease <hex> granted with TTL(<n>s)` → the hex ID.
fn grant(ep: &str, ttl: u32) -> String {
    let out = etcdctl_ok(ep, &["lease", "grant", &ttl.to_string()]);
    let words: Vec<&str> = out.trim().split(' ').collect();
    assert_eq!(words.len(), 5, "{out}");
    assert_eq!(words[0], "lease");
    assert_eq!(
        words[2..],
        ["granted", "with", &format!("TTL({ttl}s)")],
        "{out}"
    );
    assert_eq!(words[1].len(), 16, "{out}");
    assert!(words[1].chars().all(|c| c.is_ascii_hexdigit()), "{out}");
    words[1].to_string()
}

/// The remaining TTL reported by `lease timetolive`.
fn remaining(ep: &str, id: &str) -> i64 {
    let out = etcdctl_ok(ep, &["lease", "timetolive", id, "-w", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["ttl"].as_i64().unwrap()
}

#[test]
fn etcdctl_leases_expiry_and_leader_change() {
    let dir = tempfile::tempdir().unwrap();
    // Checkpoint remaining TTLs every second (the default is five minutes), so the leader
    // change below shows them surviving. Children inherit the environment.
    std::env::set_var("OXCD_LEASE_CHECKPOINT_INTERVAL_MS", "1000");
    let mut members = start_cluster(dir.path());
    let all = [0usize, 1, 2];
    let lead = leader(&members, &all).expect("a leader");
    let follower = (lead + 1) % 3;
    let (lep, fep) = (members[lead].client_url(), members[follower].client_url());

    // Grant (on a follower), put with the lease, time-to-live with keys.
    let id = grant(&fep, 10);
    assert_eq!(
        etcdctl_ok(&fep, &["put", "--lease", &id, "foo", "bar"]).trim(),
        "OK"
    );
    assert_eq!(
        etcdctl_ok(&lep, &["put", &format!("--lease={id}"), "zoo", "z"]).trim(),
        "OK"
    );
    for ep in [&fep, &lep] {
        let out = etcdctl_ok(ep, &["lease", "timetolive", &id, "--keys"]);
        let prefix = format!("lease {id} granted with TTL(10s), remaining(");
        assert!(out.starts_with(&prefix), "{out}");
        assert!(
            out.trim_end().ends_with("s), attached keys([foo zoo])"),
            "{out}"
        );
        let out = etcdctl_ok(ep, &["lease", "timetolive", &id]);
        assert!(
            out.starts_with(&prefix) && out.trim_end().ends_with("s)"),
            "{out}"
        );
    }
    // The key carries the lease ID.
    let out = etcdctl_ok(&fep, &["get", "foo", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["kvs"][0]["lease"].as_i64(),
        Some(i64::from_str_radix(&id, 16).unwrap())
    );
    // A put naming a lease that does not exist fails as in etcd.
    let out = etcdctl(&fep, &["put", "--lease", "1234", "x", "y"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("etcdserver: requested lease not found"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // List.
    let other = grant(&lep, 60);
    let out = etcdctl_ok(&fep, &["lease", "list"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "found 2 leases", "{out}");
    let mut listed = lines[1..].to_vec();
    listed.sort();
    let mut want = vec![id.as_str(), other.as_str()];
    want.sort();
    assert_eq!(listed, want);

    // keep-alive --once, through a follower (forwarded to the leader) and the leader.
    for ep in [&fep, &lep] {
        let out = etcdctl_ok(ep, &["lease", "keep-alive", "--once", &id]);
        assert_eq!(out.trim(), format!("lease {id} keepalived with TTL(10)"));
    }
    let out = etcdctl(&fep, &["lease", "keep-alive", "--once", "1234"]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Error: etcdserver: requested lease not found"
    );

    // keep-alive (streaming) through a follower keeps a short lease alive past its TTL.
    let short = grant(&fep, 5);
    assert_eq!(
        etcdctl_ok(&fep, &["put", "--lease", &short, "kept", "1"]).trim(),
        "OK"
    );
    let ka_out = dir.path().join("keepalive.out");
    let mut ka = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &fep, "lease", "keep-alive", &short])
        .stdout(std::fs::File::create(&ka_out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let line = format!("lease {short} keepalived with TTL(5)");
    assert!(
        wait_until(Duration::from_secs(10), || {
            std::fs::read_to_string(&ka_out)
                .unwrap_or_default()
                .matches(&line)
                .count()
                >= 3
        }),
        "{}",
        std::fs::read_to_string(&ka_out).unwrap_or_default()
    );
    std::thread::sleep(Duration::from_secs(3));
    // Past the TTL since the grant: kept alive.
    assert_eq!(
        etcdctl_ok(&fep, &["get", "kept", "--print-value-only"]).trim(),
        "1"
    );
    let _ = ka.kill();
    let _ = ka.wait();

    // Revoke: the keys go away, in one revision.
    let rev_before = {
        let out = etcdctl_ok(&lep, &["get", "foo", "-w", "json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["header"]["revision"].as_i64().unwrap()
    };
    let out = etcdctl_ok(&fep, &["lease", "revoke", &id]);
    assert_eq!(out.trim(), format!("lease {id} revoked"));
    let out = etcdctl_ok(&lep, &["get", "", "--prefix", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["header"]["revision"].as_i64(),
        Some(rev_before + 1),
        "{out}"
    );
    assert_eq!(etcdctl_ok(&fep, &["get", "foo"]), "");
    assert_eq!(etcdctl_ok(&fep, &["get", "zoo"]), "");
    let out = etcdctl_ok(&fep, &["lease", "timetolive", &id]);
    assert_eq!(out.trim(), format!("lease {id} already expired"));
    let out = etcdctl(&fep, &["lease", "revoke", &id]);
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("Error: failed to revoke lease (etcdserver: requested lease not found)"));

    // Expiry: the short lease, no longer kept alive, expires and its key is deleted.
    assert!(
        wait_until(Duration::from_secs(15), || etcdctl_ok(
            &fep,
            &["get", "kept"]
        )
        .is_empty()),
        "key of an expired lease still there"
    );
    let out = etcdctl_ok(&lep, &["lease", "timetolive", &short]);
    assert_eq!(out.trim(), format!("lease {short} already expired"));

    // Leader change: the remaining TTL survives (checkpointed), it is not reset to 60 s.
    let survivor = grant(&fep, 60);
    assert_eq!(
        etcdctl_ok(&fep, &["put", "--lease", &survivor, "s", "1"]).trim(),
        "OK"
    );
    std::thread::sleep(Duration::from_secs(12));
    let before = remaining(&fep, &survivor);
    assert!(before <= 49, "remaining {before}");
    members[lead].kill();
    let alive: Vec<usize> = all.iter().copied().filter(|&i| i != lead).collect();
    let start = Instant::now();
    let new_lead = loop {
        if let Some(l) = leader(&members, &alive) {
            break l;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no new leader");
        std::thread::sleep(Duration::from_millis(200));
    };
    let nep = members[new_lead].client_url();
    let after = remaining(&nep, &survivor);
    // Remaining at the last checkpoint (at most `before`), plus the election-timeout
    // extension, minus the time since; far from the full 60 s.
    assert!(
        after <= before + 2,
        "remaining {before} before, {after} after"
    );
    assert!(after > 30, "remaining {after}");
    // The new leader still expires and revokes leases (and forwards renewals).
    let quick = grant(&nep, 2);
    let other_alive = *alive.iter().find(|&&i| i != new_lead).unwrap();
    let oep = members[other_alive].client_url();
    assert_eq!(
        etcdctl_ok(&oep, &["put", "--lease", &quick, "q", "1"]).trim(),
        "OK"
    );
    let out = etcdctl_ok(&oep, &["lease", "keep-alive", "--once", &quick]);
    assert_eq!(out.trim(), format!("lease {quick} keepalived with TTL(2)"));
    assert!(
        wait_until(Duration::from_secs(10), || etcdctl_ok(&oep, &["get", "q"])
            .is_empty()),
        "key of an expired lease still there after the leader change"
    );
    assert_eq!(
        etcdctl_ok(&oep, &["get", "s", "--print-value-only"]).trim(),
        "1"
    );
}
