//! Histories of a simulated correct store: every check must accept them, quickly, and must
//! reject them once an answer is tampered with.

mod common;

use std::time::{Duration, Instant};

use common::sim::{simulate, SimConfig, Simulation};
use oxcd_lincheck::{
    check_durability, check_operations, check_reference, check_revision_order, check_watch,
    resolve_unknown_writes, CheckOutcome, Input, Output, WatchLog,
};

fn config(seed: u64) -> SimConfig {
    SimConfig {
        keys: 5,
        clients: 20,
        ops: 10_000,
        unknown_rate: 0.01,
        max_latency: 200,
        seed,
    }
}

fn assert_all_checks_pass(sim: &Simulation) {
    let outcome = check_operations(&sim.history, Duration::from_secs(30));
    assert!(outcome.is_ok(), "{outcome}");
    assert_eq!(check_reference(&sim.reference), vec![]);
    assert_eq!(check_durability(&sim.reference, &sim.history), vec![]);
    assert_eq!(check_revision_order(&sim.history), vec![]);
    let everything = WatchLog {
        watcher: 0,
        prefix: String::new(),
        start_revision: 1,
        prev_kv: true,
        events: sim.reference.clone(),
    };
    assert_eq!(check_watch(&sim.reference, &everything), vec![]);
}

#[test]
fn performance_five_keys_2000_ops_each_from_20_clients() {
    let sim = simulate(&config(1));
    let unknown = sim
        .history
        .iter()
        .filter(|op| op.return_ns.is_none())
        .count();
    assert!(
        unknown > 20,
        "the history should contain unknown outcomes, has {unknown}"
    );
    let started = Instant::now();
    let outcome = check_operations(&sim.history, Duration::from_secs(30));
    let took = started.elapsed();
    assert!(outcome.is_ok(), "{outcome}");
    // Release builds take a few tens of ms here; debug builds are ~20x slower.
    let budget = if cfg!(debug_assertions) { 60 } else { 3 };
    assert!(took < Duration::from_secs(budget), "took {took:?}");
    eprintln!("checked {} ops in {took:?}", sim.history.len());
}

#[test]
fn performance_one_hot_key_10000_ops_from_50_clients() {
    let sim = simulate(&SimConfig {
        keys: 1,
        clients: 50,
        ops: 10_000,
        unknown_rate: 0.05,
        max_latency: 1000,
        seed: 2,
    });
    let started = Instant::now();
    let outcome = check_operations(&sim.history, Duration::from_secs(60));
    let took = started.elapsed();
    assert!(outcome.is_ok(), "{outcome}");
    let budget = if cfg!(debug_assertions) { 120 } else { 5 };
    assert!(took < Duration::from_secs(budget), "took {took:?}");
    eprintln!("checked {} ops on one key in {took:?}", sim.history.len());
}

#[test]
fn heavy_faults_are_tractable_once_resolved() {
    // A third of the writes unanswered on one hot key: too many guesses for the search on
    // its own within a few seconds, but quick once the reference settles them.
    let sim = simulate(&SimConfig {
        keys: 1,
        clients: 20,
        ops: 10_000,
        unknown_rate: 0.3,
        max_latency: 200,
        seed: 4,
    });
    let started = Instant::now();
    let resolved = resolve_unknown_writes(&sim.history, &sim.reference);
    let outcome = check_operations(&resolved, Duration::from_secs(60));
    let took = started.elapsed();
    assert!(outcome.is_ok(), "{outcome}");
    let budget = if cfg!(debug_assertions) { 120 } else { 10 };
    assert!(took < Duration::from_secs(budget), "took {took:?}");
    eprintln!(
        "checked {} resolved ops on one key in {took:?}",
        resolved.len()
    );
}

#[test]
fn simulated_histories_pass_every_check() {
    for seed in 10..20 {
        let sim = simulate(&SimConfig {
            ops: 2000,
            unknown_rate: 0.05,
            ..config(seed)
        });
        assert_all_checks_pass(&sim);
    }
}

#[test]
fn resolved_histories_stay_linearizable() {
    let sim = simulate(&SimConfig {
        unknown_rate: 0.1,
        ..config(3)
    });
    let resolved = resolve_unknown_writes(&sim.history, &sim.reference);
    let outcome = check_operations(&resolved, Duration::from_secs(30));
    assert!(outcome.is_ok(), "{outcome}");
}

#[test]
fn tampered_reads_are_caught() {
    for seed in 30..40 {
        let mut sim = simulate(&SimConfig {
            ops: 2000,
            ..config(seed)
        });
        // Make the last read that saw an acknowledged write report the revision before it.
        // (Were the write's outcome unknown, the lower revision might still be possible.)
        let acknowledged: std::collections::HashSet<String> = sim
            .history
            .iter()
            .filter(|op| op.is_acknowledged())
            .filter_map(|op| op.input.written_value().map(str::to_owned))
            .collect();
        let read = sim
            .history
            .iter_mut()
            .rev()
            .find(|op| match (&op.input, &op.output) {
                (Input::Get { .. }, Output::Get { value: Some(v), .. }) => acknowledged.contains(v),
                _ => false,
            })
            .expect("the simulation has reads that saw a value");
        let key = read.input.key().to_owned();
        if let Output::Get { mod_revision, .. } = &mut read.output {
            *mod_revision = mod_revision.map(|r| r - 1);
        }
        match check_operations(&sim.history, Duration::from_secs(30)) {
            CheckOutcome::Illegal { key: bad, .. } => assert_eq!(bad, key),
            other => panic!("seed {seed}: tampering not caught: {other}"),
        }
    }
}
