//! The KV service's unary calls (Range, Put, DeleteRange, Txn) answered without tonic's
//! server machinery.
//!
//! A call is one gRPC message in, one out: the body is read, its single uncompressed
//! message decoded, `EtcdServer` called, and the answer sent as one data frame and a
//! `grpc-status: 0` trailer. tonic does the same through a streaming decoder, a streaming
//! encoder, three boxed futures and its compression negotiation; on a small request that was
//! about as many instructions as the request's own work. Errors take tonic's own
//! trailers-only encoding (`Status::into_http`), and a call that asks for compression goes to
//! tonic (see `ClientService`).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue};
use http_body_util::BodyExt;
use hyper::body::Frame;
use oxcd_proto::etcdserverpb::{DeleteRangeRequest, PutRequest, RangeRequest, TxnRequest};
use oxcd_server::{EtcdServer, ServerError};
use prost::Message;
use tonic::Status;

use crate::grpc::status;

/// The unary KV methods this path answers, by their gRPC path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KvMethod {
    Range,
    Put,
    DeleteRange,
    Txn,
}

impl KvMethod {
    pub(crate) fn from_path(path: &str) -> Option<KvMethod> {
        match path {
            "/etcdserverpb.KV/Range" => Some(KvMethod::Range),
            "/etcdserverpb.KV/Put" => Some(KvMethod::Put),
            "/etcdserverpb.KV/DeleteRange" => Some(KvMethod::DeleteRange),
            "/etcdserverpb.KV/Txn" => Some(KvMethod::Txn),
            _ => None,
        }
    }
}

/// Whether this path can answer a call with these headers: a gRPC body without compression
/// (anything else keeps tonic's handling, errors included).
pub(crate) fn accepts(headers: &HeaderMap) -> bool {
    let grpc = headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    let identity = headers
        .get("grpc-encoding")
        .is_none_or(|v| v.as_bytes() == b"identity");
    grpc && identity
}

pub(crate) type CallFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send + 'static>>;

pub(crate) fn call<B>(
    server: Arc<EtcdServer>,
    method: KvMethod,
    req: http::Request<B>,
) -> CallFuture
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    Box::pin(async move {
        let message = match read_body(req.into_body()).await.and_then(single_message) {
            Ok(m) => m,
            Err(status) => return Ok(status_response(status)),
        };
        Ok(match method {
            KvMethod::Range => answer(message, |r: RangeRequest| server.range(r)).await,
            KvMethod::Put => answer(message, |r: PutRequest| server.put(r)).await,
            KvMethod::DeleteRange => {
                answer(message, |r: DeleteRangeRequest| server.delete_range(r)).await
            }
            KvMethod::Txn => answer(message, |r: TxnRequest| server.txn(r)).await,
        })
    })
}

/// The request body's bytes. A small request arrives in one data frame, which is used as it
/// is (http-body-util's `collect` queued it in a list and copied it out again).
async fn read_body<B>(body: B) -> Result<Bytes, Status>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut body = std::pin::pin!(body);
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    while let Some(frame) = body.as_mut().frame().await {
        let frame = frame.map_err(|e| Status::from_error(e.into()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        match (&first, &mut joined) {
            (None, _) => first = Some(data),
            (Some(_), Some(all)) => all.extend_from_slice(&data),
            (Some(head), None) => {
                let mut all = BytesMut::with_capacity(head.len() + data.len());
                all.extend_from_slice(head);
                all.extend_from_slice(&data);
                joined = Some(all);
            }
        }
    }
    Ok(joined.map(BytesMut::freeze).or(first).unwrap_or_default())
}

async fn answer<Req, Resp, F, Fut>(message: Bytes, handler: F) -> http::Response<Body>
where
    Req: Message + Default,
    Resp: Message,
    F: FnOnce(Req) -> Fut,
    Fut: Future<Output = Result<Resp, ServerError>>,
{
    let req = match Req::decode(message) {
        Ok(r) => r,
        Err(e) => return status_response(Status::internal(e.to_string())),
    };
    match handler(req).await {
        Ok(resp) => message_response(&resp),
        Err(e) => status_response(status(e)),
    }
}

/// The one message of a unary request body, with tonic's statuses for bodies that are not.
fn single_message(mut body: Bytes) -> Result<Bytes, Status> {
    if body.is_empty() {
        return Err(Status::internal("Missing request message."));
    }
    if body.len() < 5 {
        return Err(Status::internal("Unexpected EOF decoding stream."));
    }
    match body[0] {
        0 => {}
        1 => {
            return Err(Status::internal(
                "protocol error: received message with compressed-flag but no grpc-encoding was specified",
            ))
        }
        f => {
            return Err(Status::internal(format!(
                "protocol error: received message with invalid compression flag: {f} (valid flags are 0 and 1), while receiving request"
            )))
        }
    }
    body.advance(1);
    let len = body.get_u32() as usize;
    if body.len() < len {
        return Err(Status::internal("Unexpected EOF decoding stream."));
    }
    if body.len() > len {
        return Err(Status::internal(
            "received more than one message in a unary request",
        ));
    }
    Ok(body)
}

fn message_response<M: Message>(msg: &M) -> http::Response<Body> {
    let len = msg.encoded_len();
    let mut buf = BytesMut::with_capacity(5 + len);
    buf.put_u8(0);
    buf.put_u32(len as u32);
    if msg.encode(&mut buf).is_err() {
        return status_response(Status::internal("failed to encode the response"));
    }
    let mut resp = http::Response::new(Body::new(UnaryBody {
        message: Some(buf.freeze()),
        trailers_sent: false,
    }));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    resp
}

fn status_response(status: Status) -> http::Response<Body> {
    status.into_http::<Body>().map(Body::new)
}

/// One gRPC message, then the `grpc-status: 0` trailer.
struct UnaryBody {
    message: Option<Bytes>,
    trailers_sent: bool,
}

impl hyper::body::Body for UnaryBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(message) = self.message.take() {
            return Poll::Ready(Some(Ok(Frame::data(message))));
        }
        if self.trailers_sent {
            return Poll::Ready(None);
        }
        self.trailers_sent = true;
        let mut trailers = HeaderMap::with_capacity(1);
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }

    fn is_end_stream(&self) -> bool {
        self.message.is_none() && self.trailers_sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(flag: u8, msg: &[u8]) -> Bytes {
        let mut b = BytesMut::new();
        b.put_u8(flag);
        b.put_u32(msg.len() as u32);
        b.put_slice(msg);
        b.freeze()
    }

    #[test]
    fn a_request_body_holds_exactly_one_uncompressed_message() {
        let put = PutRequest {
            key: Bytes::from_static(b"k"),
            value: Bytes::from_static(b"v"),
            ..Default::default()
        };
        let msg = single_message(framed(0, &put.encode_to_vec())).unwrap();
        assert_eq!(PutRequest::decode(msg).unwrap(), put);
        let err = |b: Bytes| single_message(b).unwrap_err();
        assert_eq!(err(Bytes::new()).message(), "Missing request message.");
        assert_eq!(
            err(Bytes::from_static(&[0, 0, 0])).code(),
            tonic::Code::Internal
        );
        assert!(err(framed(1, b"x")).message().contains("compressed-flag"));
        assert!(err(framed(7, b"x"))
            .message()
            .contains("invalid compression flag: 7"));
        let mut short = framed(0, b"abc").to_vec();
        short.pop();
        assert_eq!(
            err(Bytes::from(short)).message(),
            "Unexpected EOF decoding stream."
        );
        let mut two = framed(0, b"a").to_vec();
        two.extend_from_slice(&framed(0, b"b"));
        assert!(err(Bytes::from(two)).message().contains("more than one"));
    }

    #[tokio::test]
    async fn a_body_in_several_frames_is_read_whole() {
        use futures::stream;
        let chunks = [&b"ab"[..], b"", b"cde"]
            .map(|c| Ok::<_, Infallible>(Frame::data(Bytes::from_static(c))));
        let body = http_body_util::StreamBody::new(stream::iter(chunks));
        assert_eq!(&read_body(body).await.unwrap()[..], b"abcde");
        let one = http_body_util::Full::new(Bytes::from_static(b"xyz"));
        assert_eq!(&read_body(one).await.unwrap()[..], b"xyz");
        let none = http_body_util::Empty::<Bytes>::new();
        assert!(read_body(none).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_answer_is_one_framed_message_and_a_zero_status_trailer() {
        let resp = message_response(&PutRequest {
            key: Bytes::from_static(b"key"),
            ..Default::default()
        });
        assert_eq!(resp.headers()["content-type"], "application/grpc");
        let collected = resp.into_body().collect().await.unwrap();
        let trailers = collected.trailers().cloned().unwrap();
        assert_eq!(trailers["grpc-status"], "0");
        let msg = single_message(collected.to_bytes()).unwrap();
        assert_eq!(&PutRequest::decode(msg).unwrap().key[..], b"key");
    }

    #[tokio::test]
    async fn an_error_is_a_trailers_only_answer_with_its_status() {
        let resp = status_response(status(ServerError::Timeout));
        let code = resp.headers()["grpc-status"].to_str().unwrap().to_string();
        assert_eq!(code, (tonic::Code::Unavailable as i32).to_string());
        assert!(resp.headers().contains_key("grpc-message"));
    }

    #[test]
    fn compressed_or_non_grpc_calls_are_left_to_tonic() {
        let mut h = HeaderMap::new();
        assert!(!accepts(&h));
        h.insert("content-type", HeaderValue::from_static("application/grpc"));
        assert!(accepts(&h));
        h.insert("grpc-encoding", HeaderValue::from_static("identity"));
        assert!(accepts(&h));
        h.insert("grpc-encoding", HeaderValue::from_static("gzip"));
        assert!(!accepts(&h));
        assert_eq!(
            KvMethod::from_path("/etcdserverpb.KV/Put"),
            Some(KvMethod::Put)
        );
        assert_eq!(KvMethod::from_path("/etcdserverpb.KV/Compact"), None);
    }
}
