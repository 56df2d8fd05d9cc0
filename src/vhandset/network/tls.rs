//! TLS for the handset's network: a private CA made at start, one certificate for every profile host,
//! the sinks' rustls server config and the handset's rustls client config.
//!
//! The handset's client trusts exactly that private CA, so certificates are really verified (host name
//! included) without disabling anything: a misconfigured sink fails loudly instead of silently.
//!
//! Must not touch: sockets.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

pub(super) struct TlsConfigs {
    pub server: Arc<ServerConfig>,
    pub client: Arc<ClientConfig>,
    pub ca_der: CertificateDer<'static>,
}

fn err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("TLS setup: {e}"))
}

/// `key_log`: where the handset's client writes its secrets, when the build keeps a key log.
pub(super) fn make(
    hosts: &[String],
    key_log: Option<Arc<dyn rustls::KeyLog>>,
) -> std::io::Result<TlsConfigs> {
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "tattle virtual handset network CA");
    let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
    let issuer = Issuer::new(ca_params, &ca_key);

    let leaf_key = KeyPair::generate().map_err(err)?;
    let mut names = hosts.to_vec();
    if names.is_empty() {
        names.push("localhost".into());
    }
    let mut leaf_params = CertificateParams::new(names).map_err(err)?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "tattle virtual handset sinks");
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).map_err(err)?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let mut server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(err)?
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca_cert.der().clone()], key)
        .map_err(err)?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];

    let mut roots = RootCertStore::empty();
    roots.add(ca_cert.der().clone()).map_err(err)?;
    let mut client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(err)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    if let Some(key_log) = key_log {
        client.key_log = key_log;
    }

    Ok(TlsConfigs {
        server: Arc::new(server),
        client: Arc::new(client),
        ca_der: ca_cert.der().clone(),
    })
}
