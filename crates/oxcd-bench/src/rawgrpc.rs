//! A minimal unary gRPC client straight on `h2`: one HTTP/2 stream per call, no tower layers
//! and no buffer task. The load generator shares the machine with the servers it measures, and
//! tonic's client cost about as much CPU per request as a serializable range costs the server;
//! every microsecond the client saves goes to the server under test (both servers alike).

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderValue, Method, Request, Uri};
use tokio::net::TcpStream;

/// One HTTP/2 connection; clones share it.
#[derive(Clone)]
pub struct RawChannel {
    send: h2::client::SendRequest<Bytes>,
    base: String,
}

impl RawChannel {
    pub async fn connect(url: &str) -> anyhow::Result<RawChannel> {
        let uri: Uri = url.parse()?;
        if uri.scheme_str() != Some("http") {
            anyhow::bail!("only http:// endpoints are supported by the raw client: {url}");
        }
        let authority = uri
            .authority()
            .ok_or_else(|| anyhow::anyhow!("no host in {url}"))?
            .to_string();
        let tcp =
            tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&authority)).await??;
        tcp.set_nodelay(true)?;
        let (send, conn) = h2::client::Builder::new()
            .initial_window_size(1 << 20)
            .initial_connection_window_size(16 << 20)
            .handshake(tcp)
            .await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(RawChannel {
            send,
            base: format!("http://{authority}"),
        })
    }

    /// A URI for `path` (e.g. `/etcdserverpb.KV/Put`), built once per client.
    pub fn uri(&self, path: &str) -> anyhow::Result<Uri> {
        Ok(format!("{}{path}", self.base).parse()?)
    }

    /// Sends one unary call and decodes its answer; gRPC errors come back as `Err`.
    pub async fn unary<Req: prost::Message, Resp: prost::Message + Default>(
        &mut self,
        uri: &Uri,
        req: &Req,
    ) -> anyhow::Result<Resp> {
        let mut request = Request::new(());
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri.clone();
        let h = request.headers_mut();
        h.insert("content-type", HeaderValue::from_static("application/grpc"));
        h.insert("te", HeaderValue::from_static("trailers"));
        let len = req.encoded_len();
        let mut body = BytesMut::with_capacity(5 + len);
        body.put_u8(0);
        body.put_u32(len as u32);
        req.encode(&mut body)?;
        let mut send = self.send.clone().ready().await?;
        let (response, mut stream) = send.send_request(request, false)?;
        stream.send_data(body.freeze(), true)?;
        let response = response.await?;
        check_status(response.headers())?;
        let mut body = response.into_body();
        let mut data = BytesMut::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk?;
            let _ = body.flow_control().release_capacity(chunk.len());
            data.extend_from_slice(&chunk);
        }
        if let Some(trailers) = body.trailers().await? {
            check_status(&trailers)?;
        }
        if data.len() < 5 {
            anyhow::bail!("short gRPC response");
        }
        data.advance(5);
        Ok(Resp::decode(data.freeze())?)
    }
}

/// An error unless `grpc-status` is absent (not sent yet) or 0.
fn check_status(headers: &http::HeaderMap) -> anyhow::Result<()> {
    match headers.get("grpc-status").map(|v| v.as_bytes()) {
        None | Some(b"0") => Ok(()),
        Some(code) => {
            let msg = headers
                .get("grpc-message")
                .and_then(|m| m.to_str().ok())
                .unwrap_or("");
            anyhow::bail!("grpc-status {}: {msg}", String::from_utf8_lossy(code))
        }
    }
}
