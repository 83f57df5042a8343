//! Certificate/key pairs that follow changes of their files.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;

use crate::load;

/// What identifies one version of a file: modification time, size and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    mtime: Option<SystemTime>,
    len: u64,
    ino: u64,
}

/// The stamp of a file, or `None` when it cannot be stat'ed.
pub(crate) fn stamp(path: &Path) -> Option<Stamp> {
    let md = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&md);
    #[cfg(not(unix))]
    let ino = 0;
    Some(Stamp {
        mtime: md.modified().ok(),
        len: md.len(),
        ino,
    })
}

struct State {
    /// Stamps of (cert, key) the current pair was loaded from.
    loaded_from: (Option<Stamp>, Option<Stamp>),
    /// Stamps of the last failed reload, to warn once per change rather than per handshake.
    failed_at: Option<(Option<Stamp>, Option<Stamp>)>,
    key: Arc<CertifiedKey>,
}

/// A certificate chain and key loaded from files, reloaded when either file changes.
pub(crate) struct ReloadingKeyPair {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    state: Mutex<State>,
}

impl fmt::Debug for ReloadingKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingKeyPair")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl ReloadingKeyPair {
    /// Loads the pair now; errors are returned.
    pub(crate) fn load(
        cert: &Path,
        key: &Path,
        provider: &Arc<CryptoProvider>,
    ) -> Result<Arc<ReloadingKeyPair>, crate::TlsError> {
        let stamps = (stamp(cert), stamp(key));
        let ck = load::certified_key(cert, key, provider)?;
        Ok(Arc::new(ReloadingKeyPair {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            provider: provider.clone(),
            state: Mutex::new(State {
                loaded_from: stamps,
                failed_at: None,
                key: Arc::new(ck),
            }),
        }))
    }

    /// The current pair, reloading first if a file changed since the last load. A pair
    /// that fails to load is logged and the previous pair is kept.
    pub(crate) fn current(&self) -> Arc<CertifiedKey> {
        let stamps = (stamp(&self.cert), stamp(&self.key));
        let mut st = self.state.lock();
        if stamps == st.loaded_from || st.failed_at == Some(stamps) {
            return st.key.clone();
        }
        match load::certified_key(&self.cert, &self.key, &self.provider) {
            Ok(ck) => {
                tracing::info!(
                    pkg = "transport",
                    "reloaded TLS certificate (cert-file = {}, key-file = {})",
                    self.cert.display(),
                    self.key.display()
                );
                st.key = Arc::new(ck);
                st.loaded_from = stamps;
                st.failed_at = None;
            }
            Err(e) => {
                tracing::warn!(
                    pkg = "transport",
                    "failed to reload TLS certificate, keeping the previous one (cert-file = {}, key-file = {}): {e}",
                    self.cert.display(),
                    self.key.display()
                );
                st.failed_at = Some(stamps);
            }
        }
        st.key.clone()
    }
}

/// Server-side resolver: the same (reloading) pair whatever the client hello says.
#[derive(Debug)]
pub(crate) struct ServerResolver(pub(crate) Arc<ReloadingKeyPair>);

impl ResolvesServerCert for ServerResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current())
    }
}

/// Client-side resolver: presents the (reloading) pair whenever the server asks.
#[derive(Debug)]
pub(crate) struct ClientResolver(pub(crate) Arc<ReloadingKeyPair>);

impl ResolvesClientCert for ClientResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
