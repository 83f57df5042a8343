//! The service behind a client listener: the unary KV calls to `kv_unary`, the other KV calls
//! straight to the KV gRPC service, every other request through the router.
//!
//! The router matches each request's path, records its parameters and boxes the handler's
//! service on the way; for the KV calls (most of a client's traffic) that was a few thousand
//! instructions of a put's budget, spent to find the one service their path prefix names.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::routing::future::RouteFuture;
use futures::future::{Either, FutureExt, Map};
use oxcd_proto::etcdserverpb::kv_server::KvServer;
use oxcd_server::EtcdServer;
use tower::Service;

use crate::grpc::KvService;
use crate::kv_unary::{self, KvMethod};

/// The path prefix of the `etcdserverpb.KV` gRPC methods.
const KV_PATH_PREFIX: &str = "/etcdserverpb.KV/";

type KvFuture = <KvServer<KvService> as Service<http::Request<tonic::body::Body>>>::Future;
type KvResult = Result<http::Response<tonic::body::Body>, Infallible>;
type ResponseFuture = Either<
    Either<
        kv_unary::CallFuture,
        Map<KvFuture, fn(KvResult) -> Result<http::Response<Body>, Infallible>>,
    >,
    RouteFuture<Infallible>,
>;

fn into_axum_body(result: KvResult) -> Result<http::Response<Body>, Infallible> {
    result.map(|resp| resp.map(Body::new))
}

#[derive(Clone)]
pub struct ClientService {
    server: Arc<EtcdServer>,
    kv: KvServer<KvService>,
    router: axum::Router,
}

impl ClientService {
    pub(crate) fn new(
        server: Arc<EtcdServer>,
        kv: KvServer<KvService>,
        router: axum::Router,
    ) -> Self {
        ClientService { server, kv, router }
    }
}

impl<B> Service<http::Request<B>> for ClientService
where
    B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Both inner services are always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if let Some(method) = KvMethod::from_path(req.uri().path()) {
            if kv_unary::accepts(req.headers()) {
                return Either::Left(Either::Left(kv_unary::call(
                    self.server.clone(),
                    method,
                    req,
                )));
            }
        }
        if req.uri().path().starts_with(KV_PATH_PREFIX) {
            let convert: fn(KvResult) -> Result<http::Response<Body>, Infallible> = into_axum_body;
            Either::Left(Either::Right(
                self.kv.call(req.map(tonic::body::Body::new)).map(convert),
            ))
        } else {
            Either::Right(self.router.call(req.map(Body::new)))
        }
    }
}
