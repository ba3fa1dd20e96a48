//! Built-in TLS (`server.tls_cert_file`, `server.tls_key_file`): PEM files read at start and again
//! on SIGHUP, so a renewed certificate applies to new connections without a restart. A reload that
//! fails (a half-written file, a key that does not match) keeps the certificate in force.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::Context as _;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Hands every handshake the certificate in force; [`CertResolver::reload`] swaps it.
#[derive(Debug)]
pub(crate) struct CertResolver {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertResolver {
    fn load(cert_file: &Path, key_file: &Path) -> anyhow::Result<CertResolver> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let current = certified_key(cert_file, key_file, &provider)?;
        Ok(CertResolver {
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
            provider,
            current: RwLock::new(Arc::new(current)),
        })
    }

    /// Reads the files again; what SIGHUP does.
    pub(crate) fn reload(&self) -> anyhow::Result<()> {
        let fresh = certified_key(&self.cert_file, &self.key_file, &self.provider)?;
        *self.current.write().expect("the lock is never poisoned") = Arc::new(fresh);
        tracing::info!(cert = %self.cert_file.display(), "tls certificate reloaded");
        Ok(())
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().expect("the lock is never poisoned"),
        ))
    }
}

fn certified_key(
    cert_file: &Path,
    key_file: &Path,
    provider: &CryptoProvider,
) -> anyhow::Result<CertifiedKey> {
    let certs = CertificateDer::pem_file_iter(cert_file)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| {
            format!(
                "cannot read certificates from {} (server.tls_cert_file)",
                cert_file.display()
            )
        })?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{} (server.tls_cert_file) holds no PEM certificate",
        cert_file.display()
    );
    let key = PrivateKeyDer::from_pem_file(key_file).with_context(|| {
        format!(
            "cannot read a PEM private key from {} (server.tls_key_file)",
            key_file.display()
        )
    })?;
    CertifiedKey::from_der(certs, key, provider).with_context(|| {
        format!(
            "{} and {} (server.tls_cert_file, server.tls_key_file) do not make a usable pair",
            cert_file.display(),
            key_file.display()
        )
    })
}

/// The server configuration and its resolver, when TLS is configured.
pub(crate) fn server_config(
    cert_file: &Path,
    key_file: &Path,
) -> anyhow::Result<(rustls::ServerConfig, Arc<CertResolver>)> {
    let resolver = Arc::new(CertResolver::load(cert_file, key_file)?);
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::clone(&resolver.provider))
        .with_safe_default_protocol_versions()
        .context("the TLS provider supports no protocol version")?
        .with_no_client_auth()
        .with_cert_resolver(Arc::clone(&resolver) as Arc<dyn ResolvesServerCert>);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((config, resolver))
}

/// Reloads the certificate on every SIGHUP until the process ends.
pub(crate) fn reload_on_sighup(resolver: Arc<CertResolver>) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            if let Err(e) = resolver.reload() {
                tracing::error!(error = %format!("{e:#}"), "tls certificate not reloaded; the previous one stays in force");
            }
        }
    });
    Ok(())
}
