//! Server handshakes with a timeout, logging failures like etcd.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::{AlertDescription, CertificateError, Error as RustlsError, PeerIncompatible};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::LazyConfigAcceptor;

use crate::hostname::{go_quote_list, names_of, parse, verify_peer_client_san};
use crate::verify::CertRejection;

/// How long a TLS handshake may take before the connection is dropped.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The SANs of the certificate a rejected peer presented.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertSans {
    /// IP address SANs.
    pub ips: Vec<IpAddr>,
    /// DNS name SANs.
    pub dns: Vec<String>,
}

/// A failed server handshake (or post-handshake check), as passed to the failure hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeFailure {
    /// The remote address as text (`ip:port` for TCP).
    pub remote: String,
    /// The SNI server name the client sent, empty when none (or not received).
    pub server_name: String,
    /// The error, in the words Go's TLS stack uses where there is an equivalent (see
    /// [`describe_handshake_error`]).
    pub error: String,
    /// When the rejection happened after the client's certificate was parsed (allowed
    /// CN/hostname rule, CRL, peer SAN check): that certificate's SANs.
    pub cert_sans: Option<CertSans>,
}

impl fmt::Display for HandshakeFailure {
    /// etcd's log text: `rejected connection from "<addr>" (error "<err>", ServerName
    /// "<sni>")`, with `, IPAddresses [..], DNSNames [..]` added when a certificate is known.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rejected connection from {:?} (error {:?}, ServerName {:?}",
            self.remote, self.error, self.server_name
        )?;
        if let Some(s) = &self.cert_sans {
            write!(
                f,
                ", IPAddresses {}, DNSNames {}",
                go_quote_list(&s.ips),
                go_quote_list(&s.dns)
            )?;
        }
        f.write_str(")")
    }
}

type FailureHook = Arc<dyn Fn(&HandshakeFailure) + Send + Sync>;

fn default_hook(f: &HandshakeFailure) {
    tracing::info!(pkg = "embed", "{f}");
}

/// Performs TLS server handshakes for a listener.
///
/// Call [`TlsAcceptor::accept`] for each accepted TCP connection **in its own task** (the
/// handshake waits for the client), or let [`TlsAcceptor::spawn_accept_loop`] do so. Failed
/// handshakes are reported to the failure hook (by default an info-level `tracing` event with
/// `pkg = "embed"` and etcd's text) and yield `None`; nothing here panics on bad input.
#[derive(Clone)]
pub struct TlsAcceptor {
    config: Arc<rustls::ServerConfig>,
    timeout: Duration,
    peer_san_check: bool,
    on_failure: FailureHook,
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("timeout", &self.timeout)
            .field("peer_san_check", &self.peer_san_check)
            .finish_non_exhaustive()
    }
}

impl TlsAcceptor {
    /// An acceptor using `cfg` (normally from [`crate::TlsInfo::server_config`]), with the
    /// default timeout, no peer SAN check, and the default logging hook.
    pub fn new(cfg: Arc<rustls::ServerConfig>) -> Self {
        TlsAcceptor {
            config: cfg,
            timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            peer_san_check: false,
            on_failure: Arc::new(default_hook),
        }
    }

    /// Sets the handshake timeout (default [`DEFAULT_HANDSHAKE_TIMEOUT`]).
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Enables etcd's peer-port rule: after the handshake, a presented client certificate
    /// must match the remote IP ([`crate::verify_peer_client_san`]). Enable it for peer
    /// listeners unless `--experimental-peer-skip-client-san-verification` is set; never for
    /// client listeners.
    pub fn with_peer_san_check(mut self, enabled: bool) -> Self {
        self.peer_san_check = enabled;
        self
    }

    /// Replaces the failure hook (e.g. to log in zap's format or count failures).
    pub fn with_failure_hook(
        mut self,
        hook: impl Fn(&HandshakeFailure) + Send + Sync + 'static,
    ) -> Self {
        self.on_failure = Arc::new(hook);
        self
    }

    /// The server configuration in use.
    pub fn config(&self) -> &Arc<rustls::ServerConfig> {
        &self.config
    }

    /// Handshakes with a TCP client. `None` when the handshake (or the peer SAN check)
    /// failed or timed out; the failure has been reported and the socket closed.
    pub async fn accept(&self, tcp: TcpStream, remote: SocketAddr) -> Option<TlsStream<TcpStream>> {
        self.accept_io(tcp, &remote.to_string(), Some(remote.ip()))
            .await
    }

    /// [`TlsAcceptor::accept`] for any stream (e.g. a Unix socket). `remote` is only used
    /// for reporting; `remote_ip` feeds the peer SAN check (which accepts when it is `None`).
    pub async fn accept_io<IO>(
        &self,
        io: IO,
        remote: &str,
        remote_ip: Option<IpAddr>,
    ) -> Option<TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let mut server_name = String::new();
        let outcome = tokio::time::timeout(
            self.timeout,
            self.handshake(io, &mut server_name, remote_ip),
        )
        .await;
        let (error, cert_sans) = match outcome {
            Ok(Ok(stream)) => return Some(stream),
            Ok(Err(e)) => e,
            Err(_) => (
                format!("tls: handshake timed out after {:?}", self.timeout),
                None,
            ),
        };
        (self.on_failure)(&HandshakeFailure {
            remote: remote.to_string(),
            server_name,
            error,
            cert_sans,
        });
        None
    }

    async fn handshake<IO>(
        &self,
        io: IO,
        server_name: &mut String,
        remote_ip: Option<IpAddr>,
    ) -> Result<TlsStream<IO>, (String, Option<CertSans>)>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let fail = |e: io::Error| (describe_handshake_error(&e), rejection_sans(&e));
        let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io)
            .await
            .map_err(fail)?;
        if let Some(sni) = start.client_hello().server_name() {
            *server_name = sni.to_string();
        }
        let stream = start.into_stream(self.config.clone()).await.map_err(fail)?;
        if self.peer_san_check {
            let leaf = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.as_ref().to_vec());
            if let (Some(ip), Some(leaf)) = (remote_ip, leaf) {
                if let Err(e) = verify_peer_client_san(&leaf, ip).await {
                    let sans = parse(&leaf).ok().map(|c| {
                        let n = names_of(&c);
                        CertSans {
                            ips: n.ips,
                            dns: n.dns,
                        }
                    });
                    return Err((e, sans));
                }
            }
        }
        Ok(stream)
    }

    /// Accepts connections from `listener` forever, handshaking each in its own task, and
    /// sends the successful ones (with their remote address) to the returned channel. Accept
    /// errors (e.g. too many open files) are logged and retried after a short pause. The loop
    /// stops when the receiver is dropped. Must be called inside a Tokio runtime.
    pub fn spawn_accept_loop(
        self,
        listener: TcpListener,
        capacity: usize,
    ) -> mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let this = Arc::new(self);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = tx.closed() => return,
                    r = listener.accept() => r,
                };
                match accepted {
                    Ok((tcp, addr)) => {
                        let this = this.clone();
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            if let Some(s) = this.accept(tcp, addr).await {
                                let _ = tx.send((s, addr)).await;
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!(pkg = "transport", "accept error: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
        rx
    }
}

fn rustls_error(err: &io::Error) -> Option<&RustlsError> {
    err.get_ref()?.downcast_ref::<RustlsError>()
}

fn rejection_sans(err: &io::Error) -> Option<CertSans> {
    match rustls_error(err)? {
        RustlsError::InvalidCertificate(CertificateError::Other(o)) => {
            let r = o.0.downcast_ref::<CertRejection>()?;
            Some(CertSans {
                ips: r.ips.clone(),
                dns: r.dns.clone(),
            })
        }
        _ => None,
    }
}

/// Go's wording of a TLS alert, as in `remote error: tls: <text>`.
fn go_alert_text(a: &AlertDescription) -> String {
    let s = match a {
        AlertDescription::CloseNotify => "close notify",
        AlertDescription::UnexpectedMessage => "unexpected message",
        AlertDescription::BadRecordMac => "bad record MAC",
        AlertDescription::HandshakeFailure => "handshake failure",
        AlertDescription::BadCertificate => "bad certificate",
        AlertDescription::UnsupportedCertificate => "unsupported certificate",
        AlertDescription::CertificateRevoked => "revoked certificate",
        AlertDescription::CertificateExpired => "expired certificate",
        AlertDescription::CertificateUnknown => "unknown certificate",
        AlertDescription::IllegalParameter => "illegal parameter",
        AlertDescription::UnknownCA => "unknown certificate authority",
        AlertDescription::AccessDenied => "access denied",
        AlertDescription::DecodeError => "error decoding message",
        AlertDescription::DecryptError => "error decrypting message",
        AlertDescription::ProtocolVersion => "protocol version not supported",
        AlertDescription::InsufficientSecurity => "insufficient security level",
        AlertDescription::InternalError => "internal error",
        AlertDescription::UnrecognisedName => "unrecognized name",
        AlertDescription::CertificateRequired => "certificate required",
        AlertDescription::NoApplicationProtocol => "no application protocol",
        other => return format!("{other:?}"),
    };
    s.to_string()
}

fn describe_rustls(e: &RustlsError) -> String {
    const VERIFY: &str = "tls: failed to verify client certificate: ";
    match e {
        RustlsError::NoCertificatesPresented => "tls: client didn't provide a certificate".into(),
        RustlsError::InvalidCertificate(ce) => match ce {
            CertificateError::NotValidForName => crate::verify::AUTH_FAILED.into(),
            CertificateError::Other(o) => match o.0.downcast_ref::<CertRejection>() {
                Some(r) => r.message.clone(),
                None => format!("{VERIFY}{o}"),
            },
            CertificateError::UnknownIssuer => {
                format!("{VERIFY}x509: certificate signed by unknown authority")
            }
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => {
                format!("{VERIFY}x509: certificate has expired or is not yet valid")
            }
            other => format!("{VERIFY}{other}"),
        },
        RustlsError::InvalidMessage(rustls::InvalidMessage::InvalidContentType)
        | RustlsError::InvalidMessage(rustls::InvalidMessage::UnknownProtocolVersion) => {
            "tls: first record does not look like a TLS handshake".into()
        }
        RustlsError::AlertReceived(a) => format!("remote error: tls: {}", go_alert_text(a)),
        RustlsError::PeerIncompatible(PeerIncompatible::NoCipherSuitesInCommon) => {
            "tls: no cipher suite supported by both client and server".into()
        }
        RustlsError::NoApplicationProtocol => {
            "tls: client requested unsupported application protocols".into()
        }
        other => other.to_string(),
    }
}

/// Describes a handshake error from tokio-rustls in the words Go's TLS stack (and so etcd's
/// log) uses where there is an equivalent: `tls: client didn't provide a certificate`,
/// `tls: failed to verify client certificate: x509: certificate signed by unknown
/// authority`, `client certificate authentication failed`, `transport: certificate serial
/// <hex> revoked`, `tls: first record does not look like a TLS handshake`, `remote error:
/// tls: bad certificate`, `EOF`. Other errors keep rustls' or the OS's text.
pub fn describe_handshake_error(err: &io::Error) -> String {
    if let Some(e) = rustls_error(err) {
        return describe_rustls(e);
    }
    match err.kind() {
        io::ErrorKind::UnexpectedEof => "EOF".into(),
        _ => err.to_string(),
    }
}
