//! Microbenchmark of the backend work of puts, the applier's and the flusher's: batches of puts
//! (256-byte values over 1000 keys, like the put benchmark), one write batch per raft batch.
//! usage: cargo run --release -p oxcd-mvcc --example put_batch [BATCH] [PUTS] [CACHE_MIB] [DURABLE_EVERY]

use std::time::Instant;

use bytes::Bytes;
use oxcd_mvcc::{KvStore, StoreOptions};

fn main() {
    let mut args = std::env::args().skip(1);
    let batch: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(30);
    let puts: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let mut opts = StoreOptions::default();
    if let Some(mb) = args.next().and_then(|a| a.parse::<usize>().ok()) {
        opts.cache_size = mb << 20;
    }
    // Every this many batches a durable (fsynced) commit, like the applier's periodic one.
    let durable_every: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = KvStore::open(&dir.path().join("db"), opts).expect("open");
    let value = Bytes::from(vec![b'v'; 256]);
    let mut n = 0usize;
    let mut batches = 0usize;
    let mut slowest_durable = std::time::Duration::ZERO;
    let mut slowest_plain = std::time::Duration::ZERO;
    let mut run = |n: &mut usize, count: usize| {
        let mut done = 0;
        while done < count {
            batches += 1;
            let mut w = store.write().expect("write");
            for _ in 0..batch.min(count - done) {
                w.begin_request();
                let key = format!("{:08}", n.wrapping_mul(2_654_435_761) % 1000);
                w.put(Bytes::from(key), value.clone(), 0).expect("put");
                w.end_request();
                *n += 1;
                done += 1;
            }
            let durable = batches.checked_rem(durable_every) == Some(0);
            let t = Instant::now();
            if durable {
                // Like the applier: ask for a durable flush, do not wait for it.
                w.commit_and_persist_soon().expect("commit");
            } else {
                w.commit(false).expect("commit");
            }
            let took = t.elapsed();
            let slowest = if durable {
                &mut slowest_durable
            } else {
                &mut slowest_plain
            };
            *slowest = (*slowest).max(took);
        }
    };
    run(&mut n, 10_000);
    let cpu0 = cpu();
    let t = Instant::now();
    run(&mut n, puts);
    // The flusher's share: everything applied is in the file before the clock stops.
    store.flush().expect("flush");
    let el = t.elapsed();
    println!(
        "batch {batch}: {:.2} µs/put wall, {:.2} µs/put cpu; slowest commit {:.1} ms, slowest commit asking for durability {:.1} ms",
        el.as_secs_f64() * 1e6 / puts as f64,
        (cpu() - cpu0) * 1e6 / puts as f64,
        slowest_plain.as_secs_f64() * 1e3,
        slowest_durable.as_secs_f64() * 1e3,
    );
}

fn cpu() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let f: Vec<&str> = s
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}
