//! TLS for the fake: a CA and a server certificate for `myvault.vault.azure.net` made by rcgen at start, and
//! an axum listener that completes the TLS handshake (tokio-rustls) before handing the stream to axum.
//!
//! The client side is a plain reqwest client that resolves the vault's name to the fake and trusts only the
//! test CA, with certificate verification on: the transport the production store uses, pointed elsewhere.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::server::TlsStream;

/// The test CA and the server's TLS configuration.
pub struct Pki {
    pub ca_der: CertificateDer<'static>,
    pub server: Arc<ServerConfig>,
}

pub fn generate(host: &str) -> Pki {
    let ca_key = rcgen::KeyPair::generate().expect("a CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "rotavault test CA");
    ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("a CA certificate");

    let key = rcgen::KeyPair::generate().expect("a server key");
    let params = rcgen::CertificateParams::new(vec![host.to_owned()]).expect("server params");
    let cert = params.signed_by(&key, &ca).expect("a server certificate");

    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let mut server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone(), ca.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .expect("the server's TLS configuration");
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Pki { ca_der: ca.der().clone(), server: Arc::new(server) }
}

/// Accepts TCP connections and completes their TLS handshake; a failed handshake (a client that does not trust
/// the CA) is dropped and the next connection accepted.
pub struct TlsListener {
    pub tcp: TcpListener,
    pub acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                continue;
            };
            // A client that connects and never speaks must not stall every other one.
            let handshake = tokio::time::timeout(Duration::from_secs(10), self.acceptor.accept(stream));
            if let Ok(Ok(tls)) = handshake.await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
