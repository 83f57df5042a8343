//! A simulated etcd store under concurrent clients: every request takes effect atomically at a
//! random instant inside its interval, so the recorded history is linearizable by
//! construction, and the store's event history is recorded alongside it.

use std::collections::HashMap;

use oxcd_lincheck::{Event, EventKind, Input, Operation, Output};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub struct SimConfig {
    pub keys: usize,
    pub clients: u32,
    /// In total, spread evenly over the clients.
    pub ops: usize,
    /// Probability that a write's outcome is lost (half of those still take effect).
    pub unknown_rate: f64,
    /// Upper bound of a request's latency, in ns; the time between requests is up to 20 ns,
    /// so latencies well above that make requests overlap heavily.
    pub max_latency: u64,
    pub seed: u64,
}

pub struct Simulation {
    pub history: Vec<Operation>,
    pub reference: Vec<Event>,
}

struct Live {
    value: String,
    create_revision: i64,
    mod_revision: i64,
    version: i64,
}

pub fn simulate(config: &SimConfig) -> Simulation {
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut history = Vec::new();
    // (instant the op takes effect, index into history, whether it takes effect at all)
    let mut schedule: Vec<(u64, usize, bool)> = Vec::new();
    let per_client = config.ops / config.clients as usize;
    for client in 0..config.clients {
        let mut now = rng.random_range(0..100);
        for seq in 0..per_client {
            let call = now + rng.random_range(0..20);
            let latency = rng.random_range(1..config.max_latency);
            let key = format!("key-{}", rng.random_range(0..config.keys));
            let value = format!("{key}/c{client}/{seq}");
            let input = match rng.random_range(0..10) {
                0..=3 => Input::Get { key },
                4..=6 => Input::Put { key, value },
                7 => Input::Delete { key },
                _ => Input::CompareAndSet {
                    key,
                    expect: None, // chosen when it takes effect, see below
                    value,
                },
            };
            let lost = !matches!(input, Input::Get { .. }) && rng.random_bool(config.unknown_rate);
            let (return_ns, effect_at, takes_effect) = if lost {
                // The client gives up, but the request may still be applied later.
                let effect_at = call + rng.random_range(0..latency * 3);
                (None, effect_at, rng.random_bool(0.5))
            } else {
                (
                    Some(call + latency),
                    call + rng.random_range(0..latency),
                    true,
                )
            };
            schedule.push((effect_at, history.len(), takes_effect));
            history.push(Operation {
                client,
                call_ns: call,
                return_ns,
                input,
                output: Output::Unknown,
            });
            now = call + latency;
        }
    }
    schedule.sort();

    let mut revision = 1;
    let mut store: HashMap<String, Live> = HashMap::new();
    let mut written: HashMap<String, Vec<String>> = HashMap::new();
    let mut reference = Vec::new();
    for (_, index, takes_effect) in schedule {
        if !takes_effect {
            continue;
        }
        let op = &mut history[index];
        let key = op.input.key().to_owned();
        let current = store.get(&key).map(|live| live.value.clone());
        if let Input::CompareAndSet { expect, .. } = &mut op.input {
            // Mostly the right expectation, sometimes a stale one, so both outcomes occur.
            let older = written.get(&key).filter(|w| !w.is_empty());
            *expect = match (rng.random_range(0..10), older) {
                (0..=5, _) => current.clone(),
                (6, _) | (_, None) => None,
                (_, Some(older)) => Some(older[rng.random_range(0..older.len())].clone()),
            };
        }
        let output = match &op.input {
            Input::Get { .. } => {
                let live = store.get(&key);
                Output::Get {
                    value: live.map(|l| l.value.clone()),
                    mod_revision: live.map(|l| l.mod_revision),
                }
            }
            Input::Put { value, .. } => {
                revision += 1;
                put(&mut store, &mut reference, &key, value, revision);
                written.entry(key).or_default().push(value.clone());
                Output::Put { revision }
            }
            Input::Delete { .. } => match store.remove(&key) {
                Some(prev) => {
                    revision += 1;
                    reference.push(Event {
                        revision,
                        key,
                        kind: EventKind::Delete,
                        value: None,
                        create_revision: 0,
                        mod_revision: revision,
                        version: 0,
                        prev_value: Some(prev.value),
                    });
                    Output::Delete {
                        deleted: 1,
                        revision,
                    }
                }
                None => Output::Delete {
                    deleted: 0,
                    revision,
                },
            },
            Input::CompareAndSet { expect, value, .. } => {
                let succeeded = *expect == current;
                if succeeded {
                    revision += 1;
                    put(&mut store, &mut reference, &key, value, revision);
                    written.entry(key).or_default().push(value.clone());
                }
                Output::CompareAndSet {
                    succeeded,
                    revision,
                }
            }
        };
        if op.return_ns.is_some() {
            op.output = output;
        }
    }
    Simulation { history, reference }
}

fn put(
    store: &mut HashMap<String, Live>,
    reference: &mut Vec<Event>,
    key: &str,
    value: &str,
    revision: i64,
) {
    let prev = store.remove(key);
    let (create_revision, version) = match &prev {
        Some(p) => (p.create_revision, p.version + 1),
        None => (revision, 1),
    };
    reference.push(Event {
        revision,
        key: key.to_owned(),
        kind: EventKind::Put,
        value: Some(value.to_owned()),
        create_revision,
        mod_revision: revision,
        version,
        prev_value: prev.map(|p| p.value),
    });
    store.insert(
        key.to_owned(),
        Live {
            value: value.to_owned(),
            create_revision,
            mod_revision: revision,
            version,
        },
    );
}
