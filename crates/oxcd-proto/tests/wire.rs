//! Exact-byte checks of the encoding: each expectation is written out by hand from the protobuf
//! rules (key = field_number << 3 | wire_type; 0 = varint, 2 = length-delimited) and etcd's field
//! numbers, so a wrong number or type in our `.proto` files fails here.

use oxcd_proto::bytes::Bytes;
use oxcd_proto::etcdserverpb::{
    compare, range_request, AuthEnableRequest, Compare, InternalRaftRequest, PutRequest,
    RangeRequest, Request, RequestHeader,
};
use prost::Message;

// Compile-time check that the tonic servers and clients exist under the expected paths.
#[allow(unused_imports)]
use oxcd_proto::{
    etcdserverpb::{
        auth_server::AuthServer, cluster_client::ClusterClient, cluster_server::ClusterServer,
        kv_client::KvClient, kv_server::KvServer, lease_server::LeaseServer,
        maintenance_server::MaintenanceServer, watch_server::WatchServer,
    },
    v3electionpb::election_server::ElectionServer,
    v3lockpb::{lock_client::LockClient, lock_server::LockServer},
};

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

#[test]
fn put_request() {
    let req = PutRequest {
        key: b("foo"),
        value: b("bar"),
        lease: 5,
        prev_kv: true,
        ..Default::default()
    };
    let want: &[u8] = &[
        0x0a, 3, b'f', b'o', b'o', // 1: key
        0x12, 3, b'b', b'a', b'r', // 2: value
        0x18, 5, // 3: lease
        0x20, 1, // 4: prev_kv
    ];
    assert_eq!(req.encode_to_vec(), want);
    assert_eq!(PutRequest::decode(want).unwrap(), req);
}

#[test]
fn range_request() {
    let mut req = RangeRequest {
        key: b("a"),
        range_end: b("b"),
        limit: 10,
        serializable: true,
        min_create_revision: 300,
        ..Default::default()
    };
    req.set_sort_order(range_request::SortOrder::Descend);
    req.set_sort_target(range_request::SortTarget::Mod);
    let want: &[u8] = &[
        0x0a, 1, b'a', // 1: key
        0x12, 1, b'b', // 2: range_end
        0x18, 10, // 3: limit
        0x28, 2, // 5: sort_order = DESCEND
        0x30, 3, // 6: sort_target = MOD
        0x38, 1, // 7: serializable
        0x60, 0xac, 0x02, // 12: min_create_revision = 300
    ];
    assert_eq!(req.encode_to_vec(), want);
}

#[test]
fn compare_value_and_range_end() {
    let mut cmp = Compare {
        key: b("k"),
        target_union: Some(compare::TargetUnion::Value(b("v"))),
        range_end: b("z"),
        ..Default::default()
    };
    cmp.set_result(compare::CompareResult::Greater);
    cmp.set_target(compare::CompareTarget::Value);
    let want: &[u8] = &[
        0x08, 1, // 1: result = GREATER
        0x10, 3, // 2: target = VALUE
        0x1a, 1, b'k', // 3: key
        0x3a, 1, b'v', // 7: value (oneof)
        0x82, 0x04, 1, b'z', // 64: range_end, key 514 as a two-byte varint
    ];
    assert_eq!(cmp.encode_to_vec(), want);
    assert_eq!(Compare::decode(want).unwrap(), cmp);
}

#[test]
fn compare_zero_version_is_still_sent() {
    // "version == 0" (key absent) must reach the server: a set oneof member is always encoded.
    let cmp = Compare {
        key: b("k"),
        target_union: Some(compare::TargetUnion::Version(0)),
        ..Default::default()
    };
    let want: &[u8] = &[0x1a, 1, b'k', 0x20, 0];
    assert_eq!(cmp.encode_to_vec(), want);
    assert_eq!(
        Compare::decode(want).unwrap().target_union,
        Some(compare::TargetUnion::Version(0))
    );
}

#[test]
fn internal_raft_request() {
    let req = InternalRaftRequest {
        id: 9,
        header: Some(RequestHeader {
            id: 7,
            username: "root".into(),
            auth_revision: 2,
        }),
        put: Some(PutRequest {
            key: b("a"),
            value: b("b"),
            ..Default::default()
        }),
        ..Default::default()
    };
    let want: &[u8] = &[
        0x08, 9, // 1: ID
        0x22, 6, 0x0a, 1, b'a', 0x12, 1, b'b', // 4: put
        0xa2, 0x06, 10, // 100: header, key 802 as a two-byte varint
        0x08, 7, 0x12, 4, b'r', b'o', b'o', b't', 0x18, 2,
    ];
    assert_eq!(req.encode_to_vec(), want);
    assert_eq!(InternalRaftRequest::decode(want).unwrap(), req);

    let enable = InternalRaftRequest {
        auth_enable: Some(AuthEnableRequest {}),
        ..Default::default()
    };
    // 1000: auth_enable, key 8002 = 0xc2 0x3e, empty body.
    assert_eq!(enable.encode_to_vec(), [0xc2, 0x3e, 0]);
}

#[test]
fn v2_request() {
    let req = Request {
        id: 1,
        method: "PUT".into(),
        path: "/foo".into(),
        val: "bar".into(),
        prev_exist: Some(false),
        ..Default::default()
    };
    let want: &[u8] = &[
        0x08, 1, // 1: ID
        0x12, 3, b'P', b'U', b'T', // 2: Method
        0x1a, 4, b'/', b'f', b'o', b'o', // 3: Path
        0x22, 3, b'b', b'a', b'r', // 4: Val
        0x40, 0, // 8: PrevExist, present although false
    ];
    assert_eq!(req.encode_to_vec(), want);
    assert_eq!(Request::decode(want).unwrap(), req);
}

#[test]
fn v2_request_proto2_style_zero_fields_decode() {
    // etcd writes every non-nullable proto2 field, zeros included; we must read that back.
    let etcd_style: &[u8] = &[
        0x08, 0, 0x12, 3, b'G', b'E', b'T', 0x1a, 0, 0x22, 0, 0x28, 0, 0x32, 0, 0x38, 0, 0x48, 0,
        0x50, 0, 0x58, 0, 0x60, 0, 0x68, 0, 0x70, 0, 0x78, 0, 0x80, 0x01, 0, // 16: Stream
    ];
    let req = Request::decode(etcd_style).unwrap();
    assert_eq!(
        req,
        Request {
            method: "GET".into(),
            ..Default::default()
        }
    );
    assert_eq!(req.prev_exist, None);
    assert_eq!(req.refresh, None);
}

#[test]
fn generated_services_exist() {
    let names = [
        std::any::type_name::<KvServer<()>>(),
        std::any::type_name::<LockServer<()>>(),
        std::any::type_name::<ElectionServer<()>>(),
        std::any::type_name::<WatchServer<()>>(),
    ];
    assert!(names[0].ends_with("etcdserverpb::kv_server::KvServer<()>"));
    assert!(names[1].ends_with("v3lockpb::lock_server::LockServer<()>"));
    assert!(names[2].contains("v3electionpb::election_server::ElectionServer"));
    assert!(names[3].contains("watch_server::WatchServer"));
}
