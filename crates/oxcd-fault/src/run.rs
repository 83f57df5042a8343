//! One run of one scenario: start, load, break and heal, converge, check.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use oxcd_lincheck::{
    check_durability, check_operations, check_reference, check_revision_order, check_watch,
    resolve_unknown_writes, write_history_json, CheckOutcome, Event, Operation, WatchLog,
};
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::cluster::{revision_of, Cluster};
use crate::faults::{self, Scenario};
use crate::lease::{run_lease_client, LeaseReport};
use crate::netns::Network;
use crate::proxy::{self, Links};
use crate::watchers::{reference_history, run_watcher};
use crate::workload::{run_filler, run_kv_client, Clock, KvClientConfig, KV_PREFIX};
use crate::Args;

pub struct Summary {
    scenario: String,
    run: usize,
    seed: u64,
    operations: usize,
    unknown: usize,
    faults: usize,
    watch_events: usize,
    lease_cycles: u64,
    revision: i64,
    anomalies: Vec<String>,
    saved: Option<String>,
}

impl Summary {
    pub fn passed(&self) -> bool {
        self.anomalies.is_empty()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "scenario={} run={} seed={} ops={} unknown={} faults={} watch_events={} lease_cycles={} revision={} anomalies={}",
            self.scenario,
            self.run,
            self.seed,
            self.operations,
            self.unknown,
            self.faults,
            self.watch_events,
            self.lease_cycles,
            self.revision,
            self.anomalies.len()
        )?;
        for a in self.anomalies.iter().take(10) {
            write!(f, "\n  anomaly: {a}")?;
        }
        if let Some(saved) = &self.saved {
            write!(f, "\n  history saved in {saved}")?;
        }
        Ok(())
    }
}

pub async fn run(args: &Args, scenario: Scenario, run_index: usize, seed: u64) -> Result<Summary> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = args.out.join(format!("{}-{run_index}", scenario.name()));
    if dir.exists() {
        cleanup_mounts(&dir);
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    let net = Network::setup(args.members)?;
    let links = Arc::new(Links::default());
    proxy::start(args.members, links.clone()).await?;
    let mut cluster = Cluster::new(
        net,
        &args.bin,
        &dir,
        scenario.small_disk_member(args.members),
        args.member_flags.clone(),
    )?;
    cluster.start_all()?;
    wait_for_leader(&cluster, Duration::from_secs(30)).await?;

    let clock = Clock(Instant::now());
    let stop = Arc::new(AtomicBool::new(false));
    let n = args.members;
    let mut kv_tasks = Vec::new();
    for id in 0..args.clients {
        let cfg = KvClientConfig {
            id,
            members: n,
            keys: args.keys,
            seed: seed.wrapping_mul(31).wrapping_add(id as u64),
            serializable_reads: args.stale_reads,
        };
        kv_tasks.push(tokio::spawn(run_kv_client(cfg, clock, stop.clone())));
    }
    let watch_tasks: Vec<_> = (0..args.watchers)
        .map(|w| tokio::spawn(run_watcher(w, n, KV_PREFIX.to_string(), stop.clone())))
        .collect();
    let lease_task = tokio::spawn(run_lease_client(0, n, stop.clone()));
    let filler =
        (scenario == Scenario::DiskFull).then(|| tokio::spawn(run_filler(n, stop.clone())));

    let mut fault_count = 0;
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let mut log = Vec::new();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(rng.random_range(500..1500))).await;
        for (m, status) in cluster.reap() {
            log.push(format!("m{m} exited: {status}"));
        }
        let (injected, desc) = faults::inject(scenario, &mut cluster, &links, &mut rng).await?;
        if !desc.is_empty() && !desc.starts_with("no target") {
            fault_count += 1;
            log.push(desc);
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(1000..3000))).await;
        faults::undo(injected, &mut cluster, &links).await?;
    }
    stop.store(true, Ordering::Relaxed);

    let mut history: Vec<Operation> = Vec::new();
    for t in kv_tasks {
        history.extend(t.await?);
    }
    let mut watch_logs: Vec<WatchLog> = Vec::new();
    for t in watch_tasks {
        watch_logs.push(t.await?);
    }
    let lease_report: LeaseReport = lease_task.await?;
    if let Some(f) = filler {
        let written = f.await?;
        log.push(format!("filler wrote {written} large values"));
    }

    // Heal everything and let the members converge before judging.
    links.heal_all();
    for m in 0..n {
        cluster.net.clear_packet_loss(m)?;
    }
    cluster.heal().await?;
    let revision = final_revision(&cluster, Duration::from_secs(60)).await?;
    let mut anomalies = Vec::new();
    match cluster.hashes_at(revision, Duration::from_secs(60)).await {
        Ok(hashes) => {
            if hashes.windows(2).any(|w| w[0] != w[1]) {
                anomalies.push(format!(
                    "members disagree on HashKV at {revision}: {hashes:?}"
                ));
            }
        }
        Err(e) => anomalies.push(format!("members did not converge: {e:#}")),
    }
    let mut reference = None;
    let mut reference_errors = Vec::new();
    for m in cluster.running() {
        match reference_history(m, revision).await {
            Ok(events) => {
                reference = Some(events);
                break;
            }
            Err(e) => reference_errors.push(format!("m{m}: {e:#}")),
        }
    }
    match &reference {
        Some(reference) => check_all(&history, &watch_logs, reference, &mut anomalies),
        None => {
            anomalies.push(format!(
                "could not read the reference history: {}",
                reference_errors.join("; ")
            ));
            // Without it only the linearizability of the raw history can be judged.
            if let CheckOutcome::Illegal { .. } =
                check_operations(&history, Duration::from_secs(60))
            {
                anomalies.push("not linearizable (unresolved history)".into());
            }
        }
    }
    let reference = reference.unwrap_or_default();
    anomalies.extend(lease_report.anomalies.iter().cloned());

    let saved = if anomalies.is_empty() {
        None
    } else {
        Some(save(&dir, &history, &watch_logs, &reference, &log)?)
    };
    let summary = Summary {
        scenario: scenario.name(),
        run: run_index,
        seed,
        operations: history.len(),
        unknown: history.iter().filter(|o| o.return_ns.is_none()).count(),
        faults: fault_count,
        watch_events: watch_logs.iter().map(|w| w.events.len()).sum(),
        lease_cycles: lease_report.cycles,
        revision,
        anomalies,
        saved,
    };
    drop(cluster);
    if summary.passed() {
        cleanup_mounts(&dir);
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(summary)
}

fn check_all(
    history: &[Operation],
    watch_logs: &[WatchLog],
    reference: &[Event],
    anomalies: &mut Vec<String>,
) {
    let kv_reference: Vec<Event> = reference
        .iter()
        .filter(|e| e.key.starts_with(KV_PREFIX))
        .cloned()
        .collect();
    // Unanswered writes are settled from the store's history (which the checks below vouch
    // for), so they stop multiplying the search.
    let resolved = resolve_unknown_writes(history, &kv_reference);
    match check_operations(&resolved, Duration::from_secs(60)) {
        CheckOutcome::Ok => {}
        other => anomalies.push(other.to_string().trim_end().replace('\n', "\n    ")),
    }
    anomalies.extend(check_revision_order(history).iter().map(|a| a.to_string()));
    anomalies.extend(check_reference(reference).iter().map(|a| a.to_string()));
    for w in watch_logs {
        anomalies.extend(
            check_watch(reference, w)
                .iter()
                .map(|a| format!("watcher {}: {a}", w.watcher)),
        );
    }
    anomalies.extend(
        check_durability(&kv_reference, history)
            .iter()
            .map(|a| a.to_string()),
    );
}

fn save(
    dir: &Path,
    history: &[Operation],
    watch_logs: &[WatchLog],
    reference: &[Event],
    log: &[String],
) -> Result<String> {
    std::fs::create_dir_all(dir)?;
    write_history_json(dir.join("history.json"), history)?;
    std::fs::write(dir.join("watchers.json"), serde_json::to_vec(watch_logs)?)?;
    std::fs::write(dir.join("reference.json"), serde_json::to_vec(reference)?)?;
    std::fs::write(dir.join("faults.log"), log.join("\n"))?;
    Ok(dir.display().to_string())
}

fn cleanup_mounts(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let _ = crate::netns::run("umount", &[&e.path().to_string_lossy()]);
        }
    }
}

async fn wait_for_leader(cluster: &Cluster, limit: Duration) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cluster.leader().await.is_some() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("no leader within {limit:?}")
}

/// The store's revision after everything healed, read linearizably.
async fn final_revision(cluster: &Cluster, limit: Duration) -> Result<i64> {
    let start = Instant::now();
    let mut last_err = anyhow!("no member answered");
    while start.elapsed() < limit {
        for m in cluster.running() {
            match revision_of(m, false).await {
                Ok(rev) => return Ok(rev),
                Err(e) => last_err = e,
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(last_err.context("reading the final revision"))
}
