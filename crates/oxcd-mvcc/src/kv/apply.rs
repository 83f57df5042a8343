//! Applying etcd's v3 KV requests to the store, with etcd 3.4's semantics.
//!
//! Write requests ([`put`], [`delete_range`], [`txn`], [`compact`]) work on a [`WriteBatch`]
//! inside one request: the caller brackets each raft entry with
//! [`WriteBatch::begin_request`] / [`WriteBatch::end_request`] (the latter yields the watch
//! events). Every error a valid request can meet (unknown lease, missing key for
//! `ignore_*`, compacted or future revision) is found before anything is written, so the
//! caller may simply end the request and go on; only [`KvError::Internal`] (storage failure)
//! leaves a request half applied, and then the batch must be dropped.
//!
//! Responses carry a `header` holding only the revision; the server fills in the rest.

use std::cmp::Ordering;

use bytes::Bytes;
use oxcd_proto::etcdserverpb::{
    compare::{CompareResult, CompareTarget, TargetUnion},
    range_request::{SortOrder, SortTarget},
    request_op::Request,
    response_op::Response,
    CompactionRequest, CompactionResponse, Compare, DeleteRangeRequest, DeleteRangeResponse,
    PutRequest, PutResponse, RangeRequest, RangeResponse, RequestOp, ResponseHeader, ResponseOp,
    TxnRequest, TxnResponse,
};
use oxcd_proto::mvccpb::KeyValue;

use super::error::KvError;
use super::{KvRead, LeaseHooks};
use crate::query::{KeySpan, RangeOptions};
use crate::read::ReadView;
use crate::write::WriteBatch;

fn header(revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision,
        ..Default::default()
    })
}

/// Serves a Range request from `r` (a read snapshot, or a batch seeing its own writes).
pub fn range<R: KvRead + ?Sized>(r: &R, req: &RangeRequest) -> Result<RangeResponse, KvError> {
    let sort_order = SortOrder::try_from(req.sort_order).ok();
    let filtered = req.min_mod_revision != 0
        || req.max_mod_revision != 0
        || req.min_create_revision != 0
        || req.max_create_revision != 0;
    // Sorting and filtering need everything; otherwise fetch one extra row for `more`.
    let limit = if req.sort_order != SortOrder::None as i32 || filtered || req.limit <= 0 {
        0
    } else {
        usize::try_from(req.limit.saturating_add(1)).unwrap_or(usize::MAX)
    };
    let rr = r.kv_range(
        KeySpan::from_request(&req.key, &req.range_end),
        RangeOptions {
            rev: req.revision,
            limit,
            count_only: req.count_only,
        },
    )?;
    let mut kvs = rr.kvs;
    if filtered {
        let out = |v: i64, min: i64, max: i64| (max != 0 && v > max) || (min != 0 && v < min);
        kvs.retain(|kv| {
            !out(kv.mod_revision, req.min_mod_revision, req.max_mod_revision)
                && !out(
                    kv.create_revision,
                    req.min_create_revision,
                    req.max_create_revision,
                )
        });
    }

    let target = SortTarget::try_from(req.sort_target).ok();
    let order = match sort_order {
        Some(SortOrder::None) if target != Some(SortTarget::Key) => Some(SortOrder::Ascend),
        other => other,
    };
    let cmp: Option<fn(&KeyValue, &KeyValue) -> Ordering> = match target {
        Some(SortTarget::Key) => Some(|a, b| a.key.cmp(&b.key)),
        Some(SortTarget::Version) => Some(|a, b| a.version.cmp(&b.version)),
        Some(SortTarget::Create) => Some(|a, b| a.create_revision.cmp(&b.create_revision)),
        Some(SortTarget::Mod) => Some(|a, b| a.mod_revision.cmp(&b.mod_revision)),
        Some(SortTarget::Value) => Some(|a, b| a.value.cmp(&b.value)),
        None => None,
    };
    match (order, cmp) {
        (Some(SortOrder::Ascend), Some(cmp)) => kvs.sort_by(cmp),
        (Some(SortOrder::Descend), Some(cmp)) => kvs.sort_by(|a, b| cmp(b, a)),
        _ => {}
    }

    let mut more = false;
    if req.limit > 0 {
        let want = usize::try_from(req.limit).unwrap_or(usize::MAX);
        if kvs.len() > want {
            kvs.truncate(want);
            more = true;
        }
    }
    if req.keys_only {
        for kv in &mut kvs {
            kv.value = Bytes::new();
        }
    }
    Ok(RangeResponse {
        header: header(rr.rev),
        kvs,
        more,
        count: i64::try_from(rr.count).unwrap_or(i64::MAX),
    })
}

/// Applies a Put request in the batch's open request.
pub fn put(
    batch: &mut WriteBatch,
    req: &PutRequest,
    leases: &mut dyn LeaseHooks,
) -> Result<PutResponse, KvError> {
    if req.lease != 0 && !leases.lease_exists(req.lease) {
        return Err(KvError::LeaseNotFound);
    }
    put_unchecked(batch, req, leases)
}

/// A put whose lease was already checked.
fn put_unchecked(
    batch: &mut WriteBatch,
    req: &PutRequest,
    leases: &mut dyn LeaseHooks,
) -> Result<PutResponse, KvError> {
    let (mut value, mut lease) = (req.value.clone(), req.lease);
    if req.ignore_value || req.ignore_lease {
        let cur = batch.kv_range(KeySpan::Single(&req.key), RangeOptions::default())?;
        let Some(cur) = cur.kvs.into_iter().next() else {
            return Err(KvError::KeyNotFound);
        };
        if req.ignore_value {
            value = cur.value;
        }
        if req.ignore_lease {
            lease = cur.lease;
        }
    }
    let prev = batch.put(req.key.clone(), value, lease)?;
    if let Some(p) = &prev {
        if p.lease != 0 {
            leases.detach(p.lease, &req.key);
        }
    }
    if lease != 0 {
        leases.attach(lease, &req.key);
    }
    Ok(PutResponse {
        header: header(batch.write_revision()),
        prev_kv: if req.prev_kv { prev } else { None },
    })
}

/// Applies a DeleteRange request in the batch's open request.
pub fn delete_range(
    batch: &mut WriteBatch,
    req: &DeleteRangeRequest,
    leases: &mut dyn LeaseHooks,
) -> Result<DeleteRangeResponse, KvError> {
    let deleted = batch.delete_range(KeySpan::from_request(&req.key, &req.range_end))?;
    for kv in &deleted {
        if kv.lease != 0 {
            leases.detach(kv.lease, &kv.key);
        }
    }
    let revision = if batch.request_changed() {
        batch.write_revision()
    } else {
        batch.current_revision()
    };
    Ok(DeleteRangeResponse {
        header: header(revision),
        deleted: i64::try_from(deleted.len()).unwrap_or(i64::MAX),
        prev_kvs: if req.prev_kv { deleted } else { Vec::new() },
    })
}

/// Applies a Compaction request (always physical: the history is removed before returning).
pub fn compact(
    batch: &mut WriteBatch,
    req: &CompactionRequest,
) -> Result<CompactionResponse, KvError> {
    batch.compact(req.revision)?;
    Ok(CompactionResponse {
        header: header(batch.view_revision()),
    })
}

/// Whether a txn only reads (no put or delete in any branch, nested txns included).
pub fn is_txn_read_only(req: &TxnRequest) -> bool {
    req.success
        .iter()
        .chain(req.failure.iter())
        .all(|op| match &op.request {
            Some(Request::RequestRange(_)) | None => true,
            Some(Request::RequestTxn(t)) => is_txn_read_only(t),
            Some(Request::RequestPut(_)) | Some(Request::RequestDeleteRange(_)) => false,
        })
}

/// Applies a Txn request in the batch's open request; the whole txn makes at most one
/// revision. Compares and checks see the state before the txn; ops see earlier ops.
pub fn txn(
    batch: &mut WriteBatch,
    req: &TxnRequest,
    leases: &mut dyn LeaseHooks,
) -> Result<TxnResponse, KvError> {
    let path = Path::evaluate(batch, req)?;
    if !is_txn_read_only(req) {
        check_puts(batch, req, &path, leases)?;
    }
    check_ranges(batch, req, &path)?;
    let mut resp = TxnResponse {
        header: None,
        succeeded: path.succeeded,
        responses: Vec::new(),
    };
    apply_ops(&mut Target::Write(batch, leases), req, &path, &mut resp)?;
    resp.header = header(batch.view_revision());
    Ok(resp)
}

/// Serves a read-only Txn request (see [`is_txn_read_only`]) from a snapshot. A txn that
/// writes fails with [`KvError::Internal`].
pub fn txn_read(view: &ReadView, req: &TxnRequest) -> Result<TxnResponse, KvError> {
    if !is_txn_read_only(req) {
        return Err(KvError::Internal(
            "a txn that writes cannot be served from a read view".into(),
        ));
    }
    let path = Path::evaluate(view, req)?;
    check_ranges(view, req, &path)?;
    let mut resp = TxnResponse {
        header: None,
        succeeded: path.succeeded,
        responses: Vec::new(),
    };
    apply_ops(&mut Target::Read(view), req, &path, &mut resp)?;
    resp.header = header(view.current_revision());
    Ok(resp)
}

/// Which branch each txn takes: the outcome of its compares, and the paths of the nested
/// txns of the chosen branch, in order.
struct Path {
    succeeded: bool,
    nested: Vec<Path>,
}

impl Path {
    fn evaluate<R: KvRead + ?Sized>(r: &R, req: &TxnRequest) -> Result<Path, KvError> {
        let mut succeeded = true;
        for c in &req.compare {
            if !compare(r, c)? {
                succeeded = false;
                break;
            }
        }
        let ops = if succeeded {
            &req.success
        } else {
            &req.failure
        };
        let mut nested = Vec::new();
        for op in ops {
            if let Some(Request::RequestTxn(t)) = &op.request {
                nested.push(Path::evaluate(r, t)?);
            }
        }
        Ok(Path { succeeded, nested })
    }

    fn ops<'a>(&self, req: &'a TxnRequest) -> &'a [RequestOp] {
        if self.succeeded {
            &req.success
        } else {
            &req.failure
        }
    }
}

/// Evaluates one compare against every key of its range.
fn compare<R: KvRead + ?Sized>(r: &R, c: &Compare) -> Result<bool, KvError> {
    let rr = match r.kv_range(
        KeySpan::from_request(&c.key, &c.range_end),
        RangeOptions::default(),
    ) {
        Ok(rr) => rr,
        Err(crate::StoreError::Compacted | crate::StoreError::FutureRevision) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let target = CompareTarget::try_from(c.target).ok();
    if rr.kvs.is_empty() {
        // a missing key has no value to compare
        if target == Some(CompareTarget::Value) {
            return Ok(false);
        }
        return Ok(compare_kv(c, target, &KeyValue::default()));
    }
    Ok(rr.kvs.iter().all(|kv| compare_kv(c, target, kv)))
}

fn compare_kv(c: &Compare, target: Option<CompareTarget>, kv: &KeyValue) -> bool {
    let int =
        |want: fn(&TargetUnion) -> Option<i64>| c.target_union.as_ref().and_then(want).unwrap_or(0);
    let ord = match target {
        Some(CompareTarget::Value) => {
            let v: &[u8] = match &c.target_union {
                Some(TargetUnion::Value(v)) => v,
                _ => &[],
            };
            kv.value[..].cmp(v)
        }
        Some(CompareTarget::Create) => kv.create_revision.cmp(&int(|t| match t {
            TargetUnion::CreateRevision(v) => Some(*v),
            _ => None,
        })),
        Some(CompareTarget::Mod) => kv.mod_revision.cmp(&int(|t| match t {
            TargetUnion::ModRevision(v) => Some(*v),
            _ => None,
        })),
        Some(CompareTarget::Version) => kv.version.cmp(&int(|t| match t {
            TargetUnion::Version(v) => Some(*v),
            _ => None,
        })),
        Some(CompareTarget::Lease) => kv.lease.cmp(&int(|t| match t {
            TargetUnion::Lease(v) => Some(*v),
            _ => None,
        })),
        None => Ordering::Equal,
    };
    match CompareResult::try_from(c.result) {
        Ok(CompareResult::Equal) => ord == Ordering::Equal,
        Ok(CompareResult::NotEqual) => ord != Ordering::Equal,
        Ok(CompareResult::Greater) => ord == Ordering::Greater,
        Ok(CompareResult::Less) => ord == Ordering::Less,
        Err(_) => true,
    }
}

/// Calls `f` on every non-txn op of the chosen branches.
fn for_each_op<F>(req: &TxnRequest, path: &Path, f: &mut F) -> Result<(), KvError>
where
    F: FnMut(&RequestOp) -> Result<(), KvError>,
{
    let mut nested = path.nested.iter();
    for op in path.ops(req) {
        match &op.request {
            Some(Request::RequestTxn(t)) => {
                if let Some(p) = nested.next() {
                    for_each_op(t, p, f)?;
                }
            }
            _ => f(op)?,
        }
    }
    Ok(())
}

/// Puts of the chosen branches: the key must exist for `ignore_*`, the lease must exist.
fn check_puts(
    batch: &WriteBatch,
    req: &TxnRequest,
    path: &Path,
    leases: &dyn LeaseHooks,
) -> Result<(), KvError> {
    for_each_op(req, path, &mut |op| {
        let Some(Request::RequestPut(p)) = &op.request else {
            return Ok(());
        };
        if p.ignore_value || p.ignore_lease {
            let cur = batch.kv_range(KeySpan::Single(&p.key), RangeOptions::default())?;
            if cur.kvs.is_empty() {
                return Err(KvError::KeyNotFound);
            }
        }
        if p.lease != 0 && !leases.lease_exists(p.lease) {
            return Err(KvError::LeaseNotFound);
        }
        Ok(())
    })
}

/// Ranges of the chosen branches: the revision must exist and not be compacted.
fn check_ranges<R: KvRead + ?Sized>(r: &R, req: &TxnRequest, path: &Path) -> Result<(), KvError> {
    let (current, first) = (r.kv_revision(), r.kv_first_revision());
    for_each_op(req, path, &mut |op| {
        let Some(Request::RequestRange(g)) = &op.request else {
            return Ok(());
        };
        if g.revision == 0 {
            Ok(())
        } else if g.revision > current {
            Err(KvError::FutureRev)
        } else if g.revision < first {
            Err(KvError::Compacted)
        } else {
            Ok(())
        }
    })
}

enum Target<'a> {
    Write(&'a mut WriteBatch, &'a mut dyn LeaseHooks),
    Read(&'a ReadView),
}

fn apply_ops(
    target: &mut Target<'_>,
    req: &TxnRequest,
    path: &Path,
    resp: &mut TxnResponse,
) -> Result<(), KvError> {
    let mut nested = path.nested.iter();
    for op in path.ops(req) {
        let response = match (&op.request, &mut *target) {
            (None, _) => None,
            (Some(Request::RequestRange(g)), Target::Write(b, _)) => {
                Some(Response::ResponseRange(range(&**b, g)?))
            }
            (Some(Request::RequestRange(g)), Target::Read(v)) => {
                Some(Response::ResponseRange(range(*v, g)?))
            }
            (Some(Request::RequestPut(p)), Target::Write(b, l)) => {
                Some(Response::ResponsePut(put_unchecked(b, p, *l)?))
            }
            (Some(Request::RequestDeleteRange(d)), Target::Write(b, l)) => {
                Some(Response::ResponseDeleteRange(delete_range(b, d, *l)?))
            }
            (Some(Request::RequestPut(_) | Request::RequestDeleteRange(_)), Target::Read(_)) => {
                return Err(KvError::Internal("write op in a read-only txn".into()));
            }
            (Some(Request::RequestTxn(t)), _) => {
                let Some(p) = nested.next() else {
                    return Err(KvError::Internal("txn path out of step".into()));
                };
                let mut sub = TxnResponse {
                    header: Some(ResponseHeader::default()),
                    succeeded: p.succeeded,
                    responses: Vec::new(),
                };
                apply_ops(target, t, p, &mut sub)?;
                Some(Response::ResponseTxn(sub))
            }
        };
        resp.responses.push(ResponseOp { response });
    }
    Ok(())
}
