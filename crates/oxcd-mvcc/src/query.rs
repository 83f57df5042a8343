//! Range reads over the store's tables, shared by [`crate::ReadView`] (a redb read
//! transaction) and [`crate::WriteBatch`] (a redb write transaction, seeing its own writes).
//!
//! Reads at the current revision scan only `latest`. Reads at an older revision walk the
//! distinct user keys of `history` inside the span with two B-tree seeks per key (the newest
//! revision at or below the requested one, then the next key) and load the values from
//! `revisions`; tombstones hide the key. Nothing is held in memory beyond the result.

use std::ops::Bound;

use oxcd_proto::mvccpb::KeyValue;
use redb::ReadableTable;

use crate::error::StoreError;
use crate::revision::Revision;
use crate::tables::{decode_kv, HISTORY_PUT};

/// Which keys a range covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpan<'a> {
    /// Exactly one key.
    Single(&'a [u8]),
    /// Keys in `[start, end)`; empty when `end <= start`.
    Range(&'a [u8], &'a [u8]),
    /// Every key `>= start`.
    FromKey(&'a [u8]),
}

impl<'a> KeySpan<'a> {
    /// The span of an etcd request's `key` / `range_end` pair: an empty `range_end` means the
    /// single key, `"\0"` means every key from `key` on, anything else means `[key, range_end)`.
    pub fn from_request(key: &'a [u8], range_end: &'a [u8]) -> Self {
        match range_end {
            [] => KeySpan::Single(key),
            [0] => KeySpan::FromKey(key),
            end => KeySpan::Range(key, end),
        }
    }

    /// The first key of the span.
    pub fn start(&self) -> &'a [u8] {
        match *self {
            KeySpan::Single(k) | KeySpan::Range(k, _) | KeySpan::FromKey(k) => k,
        }
    }

    /// Whether `key` is inside the span.
    pub fn contains(&self, key: &[u8]) -> bool {
        match *self {
            KeySpan::Single(k) => key == k,
            KeySpan::Range(s, e) => key >= s && key < e,
            KeySpan::FromKey(s) => key >= s,
        }
    }

    /// Whether `key` lies beyond the end of the span (so no later key can be inside it).
    pub(crate) fn past_end(&self, key: &[u8]) -> bool {
        match *self {
            KeySpan::Single(k) => key > k,
            KeySpan::Range(_, e) => key >= e,
            KeySpan::FromKey(_) => false,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        matches!(*self, KeySpan::Range(s, e) if e <= s)
    }
}

/// Options of a range read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RangeOptions {
    /// The revision to read at; `<= 0` means the current revision.
    pub rev: i64,
    /// Return at most this many key-values (0: no limit). `count` is not affected.
    pub limit: usize,
    /// Only count; return no key-values.
    pub count_only: bool,
}

/// The result of a range read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RangeResult {
    /// The key-values, in ascending key order.
    pub kvs: Vec<KeyValue>,
    /// How many keys the span holds at the revision read (ignores `limit`).
    pub count: usize,
    /// The store's current revision (not the revision read at), as etcd reports it.
    pub rev: i64,
}

/// Builds a range's answer: every key found is counted, and its value kept while the limit
/// allows (and the read wants values at all).
pub(crate) struct RangeCollector {
    out: RangeResult,
    opts: RangeOptions,
}

impl RangeCollector {
    /// An empty answer of a read at a store whose current revision is `current`.
    pub(crate) fn new(opts: RangeOptions, current: i64) -> RangeCollector {
        RangeCollector {
            out: RangeResult {
                rev: current,
                ..RangeResult::default()
            },
            opts,
        }
    }

    /// Counts one more key; true when its value belongs in the answer.
    pub(crate) fn count(&mut self) -> bool {
        self.out.count += 1;
        !self.opts.count_only && (self.opts.limit == 0 || self.out.kvs.len() < self.opts.limit)
    }

    /// Counts one more key and keeps `kv()` if the answer wants it (decoded only then).
    pub(crate) fn add(
        &mut self,
        kv: impl FnOnce() -> Result<KeyValue, StoreError>,
    ) -> Result<(), StoreError> {
        if self.count() {
            self.out.kvs.push(kv()?);
        }
        Ok(())
    }

    pub(crate) fn finish(self) -> RangeResult {
        self.out
    }
}

/// Checks a requested revision against the store's bounds and resolves 0 to `current`.
pub(crate) fn resolve_rev(rev: i64, current: i64, compacted: i64) -> Result<i64, StoreError> {
    if rev > current {
        return Err(StoreError::FutureRevision);
    }
    let rev = if rev <= 0 { current } else { rev };
    if rev < compacted {
        return Err(StoreError::Compacted);
    }
    Ok(rev)
}

/// Reads `span` at `opts.rev` from the three data tables.
#[allow(clippy::too_many_arguments)]
pub(crate) fn range<L, H, R>(
    latest: &L,
    history: &H,
    revisions: &R,
    span: KeySpan<'_>,
    opts: RangeOptions,
    current: i64,
    compacted: i64,
) -> Result<RangeResult, StoreError>
where
    L: ReadableTable<&'static [u8], &'static [u8]>,
    H: ReadableTable<(&'static [u8], u64, u64), u8>,
    R: ReadableTable<&'static [u8], &'static [u8]>,
{
    let rev = resolve_rev(opts.rev, current, compacted)?;
    if rev == current {
        return range_latest(latest, span, opts, current);
    }
    let mut out = RangeCollector::new(opts, current);
    if span.is_empty() {
        return Ok(out.finish());
    }
    let at = rev as u64;
    let mut next = first_history_key(history, Bound::Included((span.start(), 0, 0)))?;
    while let Some(key) = next {
        if span.past_end(&key) {
            break;
        }
        if let Some(found) = newest_at(history, &key, at)? {
            if found.1 == HISTORY_PUT {
                out.add(|| {
                    let rk = Revision::new(found.0.main, found.0.sub).to_bytes();
                    let v = revisions.get(&rk[..])?.ok_or_else(|| {
                        StoreError::Corrupt(format!(
                            "history names revision {:?} missing from revisions",
                            found.0
                        ))
                    })?;
                    decode_kv(v.value())
                })?;
            }
        }
        if matches!(span, KeySpan::Single(_)) {
            break;
        }
        next = first_history_key(
            history,
            Bound::Excluded((key.as_slice(), u64::MAX, u64::MAX)),
        )?;
    }
    Ok(out.finish())
}

/// Reads `span` at the current revision: `latest` alone holds everything such a read needs.
pub(crate) fn range_latest<L>(
    latest: &L,
    span: KeySpan<'_>,
    opts: RangeOptions,
    current: i64,
) -> Result<RangeResult, StoreError>
where
    L: ReadableTable<&'static [u8], &'static [u8]>,
{
    let mut out = RangeCollector::new(opts, current);
    if span.is_empty() {
        return Ok(out.finish());
    }
    let iter = match span {
        KeySpan::Single(k) => {
            if let Some(v) = latest.get(k)? {
                out.add(|| decode_kv(v.value()))?;
            }
            return Ok(out.finish());
        }
        KeySpan::Range(s, e) => latest.range::<&[u8]>(s..e)?,
        KeySpan::FromKey(s) => latest.range::<&[u8]>(s..)?,
    };
    for item in iter {
        let (_, v) = item?;
        out.add(|| decode_kv(v.value()))?;
    }
    Ok(out.finish())
}

/// The user key of the first `history` entry at or after `from`.
pub(crate) fn first_history_key<H>(
    history: &H,
    from: Bound<(&[u8], u64, u64)>,
) -> Result<Option<Vec<u8>>, StoreError>
where
    H: ReadableTable<(&'static [u8], u64, u64), u8>,
{
    let range = (from, Bound::<(&[u8], u64, u64)>::Unbounded);
    let mut iter = history.range(range)?;
    match iter.next() {
        Some(item) => {
            let (k, _) = item?;
            Ok(Some(k.value().0.to_vec()))
        }
        None => Ok(None),
    }
}

/// The newest revision of `key` with main revision `<= at`, and its history flag.
pub(crate) fn newest_at<H>(
    history: &H,
    key: &[u8],
    at: u64,
) -> Result<Option<(Revision, u8)>, StoreError>
where
    H: ReadableTable<(&'static [u8], u64, u64), u8>,
{
    let mut iter = history.range((key, 0u64, 0u64)..=(key, at, u64::MAX))?;
    match iter.next_back() {
        Some(item) => {
            let (k, v) = item?;
            let (_, main, sub) = k.value();
            Ok(Some((Revision::new(main as i64, sub as i64), v.value())))
        }
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_from_request() {
        assert_eq!(KeySpan::from_request(b"a", b""), KeySpan::Single(b"a"));
        assert_eq!(KeySpan::from_request(b"a", b"\0"), KeySpan::FromKey(b"a"));
        assert_eq!(
            KeySpan::from_request(b"a", b"b"),
            KeySpan::Range(b"a", b"b")
        );
        assert!(KeySpan::from_request(b"b", b"a").is_empty());
        assert!(KeySpan::from_request(b"a", b"a").is_empty());
    }

    #[test]
    fn span_contains() {
        let r = KeySpan::Range(b"a", b"c");
        assert!(r.contains(b"a") && r.contains(b"bzzz") && !r.contains(b"c"));
        assert!(r.past_end(b"c") && !r.past_end(b"b"));
        let f = KeySpan::FromKey(b"b");
        assert!(f.contains(b"zz") && !f.contains(b"a") && !f.past_end(b"\xff"));
        let s = KeySpan::Single(b"k");
        assert!(s.contains(b"k") && !s.contains(b"k\0") && s.past_end(b"k\0"));
    }

    #[test]
    fn resolve_revision_bounds() {
        assert_eq!(resolve_rev(0, 10, 0).ok(), Some(10));
        assert_eq!(resolve_rev(-3, 10, 0).ok(), Some(10));
        assert_eq!(resolve_rev(5, 10, 5).ok(), Some(5));
        assert!(matches!(
            resolve_rev(11, 10, 0),
            Err(StoreError::FutureRevision)
        ));
        assert!(matches!(resolve_rev(4, 10, 5), Err(StoreError::Compacted)));
    }
}
