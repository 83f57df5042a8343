//! The checks etcd's gRPC front end makes before proposing a KV request to raft.
//!
//! * every request key and every txn compare key must be non-empty;
//! * a put must not combine `ignore_value` with a value nor `ignore_lease` with a lease;
//! * a txn may hold at most `max_txn_ops` compares / success ops / failure ops, and nested
//!   txns only get what their parents left over;
//! * an empty txn op is rejected as "key not found";
//! * within one branch of a txn (nested txns included) a key may be put only once and must not
//!   also be deleted; a key put in both branches of a nested txn is fine. A delete's range is
//!   `[key, range_end)` with an empty `range_end` meaning the key alone; a `range_end` of
//!   `"\0"` forms an interval that overlaps nothing here (as in etcd 3.4).

use std::collections::HashSet;

use bytes::Bytes;
use oxcd_proto::etcdserverpb::{
    request_op::Request, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};

use super::error::KvError;

/// etcd's default `--max-txn-ops`.
pub const DEFAULT_MAX_TXN_OPS: usize = 128;

/// Checks a Range request.
pub fn validate_range(r: &RangeRequest) -> Result<(), KvError> {
    if r.key.is_empty() {
        return Err(KvError::EmptyKey);
    }
    Ok(())
}

/// Checks a Put request.
pub fn validate_put(r: &PutRequest) -> Result<(), KvError> {
    if r.key.is_empty() {
        return Err(KvError::EmptyKey);
    }
    if r.ignore_value && !r.value.is_empty() {
        return Err(KvError::ValueProvided);
    }
    if r.ignore_lease && r.lease != 0 {
        return Err(KvError::LeaseProvided);
    }
    Ok(())
}

/// Checks a DeleteRange request.
pub fn validate_delete_range(r: &DeleteRangeRequest) -> Result<(), KvError> {
    if r.key.is_empty() {
        return Err(KvError::EmptyKey);
    }
    Ok(())
}

/// Checks a Txn request: sizes and keys (recursively), then duplicate writes in each branch.
pub fn validate_txn(r: &TxnRequest, max_txn_ops: usize) -> Result<(), KvError> {
    let max = i64::try_from(max_txn_ops).unwrap_or(i64::MAX);
    check_txn(r, max)?;
    check_writes(&r.success)?;
    check_writes(&r.failure)?;
    Ok(())
}

fn check_txn(r: &TxnRequest, max_ops: i64) -> Result<(), KvError> {
    let opc = r.compare.len().max(r.success.len()).max(r.failure.len());
    let opc = i64::try_from(opc).unwrap_or(i64::MAX);
    if opc > max_ops {
        return Err(KvError::TooManyOps);
    }
    if r.compare.iter().any(|c| c.key.is_empty()) {
        return Err(KvError::EmptyKey);
    }
    for op in r.success.iter().chain(r.failure.iter()) {
        check_op(op, max_ops - opc)?;
    }
    Ok(())
}

fn check_op(op: &RequestOp, max_ops: i64) -> Result<(), KvError> {
    match &op.request {
        Some(Request::RequestRange(r)) => validate_range(r),
        Some(Request::RequestPut(r)) => validate_put(r),
        Some(Request::RequestDeleteRange(r)) => validate_delete_range(r),
        Some(Request::RequestTxn(r)) => check_txn(r, max_ops),
        None => Err(KvError::KeyNotFound),
    }
}

/// Deleted intervals `[begin, end)`; an empty `end` is unbounded.
#[derive(Default)]
struct Deletes(Vec<(Bytes, Bytes)>);

impl Deletes {
    fn covers(&self, key: &[u8]) -> bool {
        self.0
            .iter()
            .any(|(b, e)| key >= &b[..] && (e.is_empty() || key < &e[..]))
    }
}

/// The keys put and the ranges deleted by one branch (nested txns included), or
/// [`KvError::DuplicateKey`].
fn check_writes(ops: &[RequestOp]) -> Result<(HashSet<Bytes>, Deletes), KvError> {
    let mut dels = Deletes::default();
    for op in ops {
        if let Some(Request::RequestDeleteRange(d)) = &op.request {
            let end = if d.range_end.is_empty() {
                let mut e = d.key.to_vec();
                e.push(0);
                Bytes::from(e)
            } else {
                d.range_end.clone()
            };
            dels.0.push((d.key.clone(), end));
        }
    }

    let mut puts: HashSet<Bytes> = HashSet::new();
    for op in ops {
        let Some(Request::RequestTxn(t)) = &op.request else {
            continue;
        };
        let (puts_then, dels_then) = check_writes(&t.success)?;
        let (puts_else, dels_else) = check_writes(&t.failure)?;
        for k in &puts_then {
            if puts.contains(k) || dels.covers(k) {
                return Err(KvError::DuplicateKey);
            }
            puts.insert(k.clone());
        }
        for k in &puts_else {
            if puts.contains(k) && !puts_then.contains(k) {
                return Err(KvError::DuplicateKey);
            }
            if dels.covers(k) {
                return Err(KvError::DuplicateKey);
            }
            puts.insert(k.clone());
        }
        dels.0.extend(dels_then.0);
        dels.0.extend(dels_else.0);
    }

    for op in ops {
        let Some(Request::RequestPut(p)) = &op.request else {
            continue;
        };
        if puts.contains(&p.key) || dels.covers(&p.key) {
            return Err(KvError::DuplicateKey);
        }
        puts.insert(p.key.clone());
    }
    Ok((puts, dels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxcd_proto::etcdserverpb::Compare;

    fn put(k: &str) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestPut(PutRequest {
                key: Bytes::copy_from_slice(k.as_bytes()),
                ..Default::default()
            })),
        }
    }
    fn del(k: &str, end: &str) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
                key: Bytes::copy_from_slice(k.as_bytes()),
                range_end: Bytes::copy_from_slice(end.as_bytes()),
                ..Default::default()
            })),
        }
    }
    fn get(k: &str) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestRange(RangeRequest {
                key: Bytes::copy_from_slice(k.as_bytes()),
                ..Default::default()
            })),
        }
    }
    fn txn(success: Vec<RequestOp>, failure: Vec<RequestOp>) -> TxnRequest {
        TxnRequest {
            compare: vec![],
            success,
            failure,
        }
    }
    fn nested(t: TxnRequest) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestTxn(t)),
        }
    }
    fn check(t: &TxnRequest) -> Result<(), KvError> {
        validate_txn(t, DEFAULT_MAX_TXN_OPS)
    }

    #[test]
    fn simple_requests() {
        assert_eq!(
            validate_range(&RangeRequest::default()),
            Err(KvError::EmptyKey)
        );
        assert_eq!(
            validate_delete_range(&DeleteRangeRequest::default()),
            Err(KvError::EmptyKey)
        );
        let mut p = PutRequest {
            key: Bytes::from_static(b"k"),
            value: Bytes::from_static(b"v"),
            ignore_value: true,
            ..Default::default()
        };
        assert_eq!(validate_put(&p), Err(KvError::ValueProvided));
        p.value = Bytes::new();
        p.ignore_lease = true;
        p.lease = 5;
        assert_eq!(validate_put(&p), Err(KvError::LeaseProvided));
        p.lease = 0;
        assert_eq!(validate_put(&p), Ok(()));
        p.key = Bytes::new();
        assert_eq!(validate_put(&p), Err(KvError::EmptyKey));
    }

    #[test]
    fn txn_sizes_and_keys() {
        let ops: Vec<_> = (0..3).map(|i| put(&format!("k{i}"))).collect();
        assert_eq!(validate_txn(&txn(ops.clone(), vec![]), 3), Ok(()));
        assert_eq!(
            validate_txn(&txn(ops.clone(), vec![]), 2),
            Err(KvError::TooManyOps)
        );
        // a nested txn gets only what its parent leaves over
        let inner = txn(vec![put("a"), put("b")], vec![]);
        let outer = txn(vec![nested(inner), put("c")], vec![]);
        assert_eq!(validate_txn(&outer, 4), Ok(()));
        assert_eq!(validate_txn(&outer, 3), Err(KvError::TooManyOps));
        let bad_cmp = TxnRequest {
            compare: vec![Compare::default()],
            ..Default::default()
        };
        assert_eq!(check(&bad_cmp), Err(KvError::EmptyKey));
        assert_eq!(check(&txn(vec![get("")], vec![])), Err(KvError::EmptyKey));
        assert_eq!(
            check(&txn(vec![], vec![RequestOp { request: None }])),
            Err(KvError::KeyNotFound)
        );
    }

    #[test]
    fn duplicate_rules() {
        assert_eq!(
            check(&txn(vec![put("a"), put("a")], vec![])),
            Err(KvError::DuplicateKey)
        );
        // each branch separately
        assert_eq!(check(&txn(vec![put("a")], vec![put("a")])), Ok(()));
        assert_eq!(
            check(&txn(vec![put("a"), del("a", "")], vec![])),
            Err(KvError::DuplicateKey)
        );
        assert_eq!(
            check(&txn(vec![put("b"), del("a", "c")], vec![])),
            Err(KvError::DuplicateKey)
        );
        assert_eq!(check(&txn(vec![put("c"), del("a", "c")], vec![])), Ok(()));
        // a from-key delete ("\0") is not seen as overlapping (etcd 3.4)
        assert_eq!(check(&txn(vec![put("b"), del("a", "\0")], vec![])), Ok(()));
        // two deletes may overlap, reads never conflict
        assert_eq!(
            check(&txn(vec![del("a", "z"), del("b", ""), get("b")], vec![])),
            Ok(())
        );
        // nested: then and else may put the same key
        let n = nested(txn(vec![put("x")], vec![put("x")]));
        assert_eq!(check(&txn(vec![n.clone()], vec![])), Ok(()));
        // but not together with an outer put or delete of it
        assert_eq!(
            check(&txn(vec![n.clone(), put("x")], vec![])),
            Err(KvError::DuplicateKey)
        );
        assert_eq!(
            check(&txn(vec![n.clone(), del("x", "")], vec![])),
            Err(KvError::DuplicateKey)
        );
        // two nested txns putting the same key
        let m = nested(txn(vec![put("x")], vec![]));
        assert_eq!(
            check(&txn(vec![m.clone(), m.clone()], vec![])),
            Err(KvError::DuplicateKey)
        );
        // a nested delete conflicts with a later nested put and an outer put
        let d = nested(txn(vec![], vec![del("w", "y")]));
        assert_eq!(
            check(&txn(vec![d.clone(), m.clone()], vec![])),
            Err(KvError::DuplicateKey)
        );
        assert_eq!(
            check(&txn(vec![d.clone(), put("x")], vec![])),
            Err(KvError::DuplicateKey)
        );
        // ...but a nested put before the nested delete is not checked against it (etcd 3.4)
        assert_eq!(check(&txn(vec![m, d], vec![])), Ok(()));
    }
}
