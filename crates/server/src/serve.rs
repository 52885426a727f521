//! Start-up and shutdown.
//!
//! [`start_with`] does everything `attestation serve` does (connect, migrate,
//! load or create the enrollment CA and the audit checkpoint key, resolve the
//! master key, build the authenticator, load the extensions it is given,
//! load the TLS certificate when configured, bind, start periodic audit
//! checkpoints) and returns a handle; [`run`]
//! waits for SIGTERM or Ctrl-C on top of it. Integration tests call
//! [`start_with`] with port 0, a fresh database and the extensions they need.

use std::net::SocketAddr;
use std::sync::Arc;

use attest_auth::{AuthConfig, OidcConfig, OperatorAuthenticator};
use attest_domain::clock::SharedClock;
use attest_pki::{CaOptions, CheckpointSigner, EnrollmentCa, PassphraseSource};
use attest_store::{Store, StoreOptions, CORE_MIGRATIONS};
use attest_tls::{ReloadTask, TlsSource};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use attest_ext::{Activity, Extension, ExtensionContext, HostParts, Telemetry};

use crate::app;
use crate::config::{CaAlgorithm, Settings};
use crate::extensions::machine_auth::HostMachineAuth;
use crate::state::AppState;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Connecting to or migrating the database failed.
    #[error("database: {0}")]
    Store(#[from] attest_store::StoreError),
    /// The enrollment CA could not be loaded or created.
    #[error("enrollment CA: {0}")]
    Pki(#[from] attest_pki::PkiError),
    /// The audit checkpoint key could not be loaded or created.
    #[error("audit checkpoint key: {0}")]
    CheckpointKey(attest_pki::PkiError),
    /// The master key is malformed or its file unusable.
    #[error("master key: {0}")]
    MasterKey(String),
    /// The authentication settings are inconsistent.
    #[error("authentication: {0}")]
    Auth(#[from] attest_auth::AuthSetupError),
    /// The Talos Image Factory client could not be set up.
    #[error("image factory: {0}")]
    Factory(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TLS certificate, key or client CAs cannot be used.
    #[error("{0}")]
    Tls(#[from] attest_tls::TlsError),
    /// The compiled-in extensions are inconsistent (names, prefixes).
    #[error("{0}")]
    Extensions(#[from] crate::extensions::RegistryError),
    /// The server loop failed.
    #[error("server: {0}")]
    Serve(std::io::Error),
    /// The certificate-lifecycle listener's own certificate could not be
    /// prepared.
    #[error("certificate lifecycle listener TLS: {0}")]
    CertsTls(String),
    /// The certificate-lifecycle application could not start.
    #[error("{0}")]
    Certs(#[from] attest_certs_api::serve::CertsStartError),
}

/// A started server.
pub struct RunningServer {
    /// The bound address (the real port when 0 was asked for).
    pub addr: SocketAddr,
    /// The state the handlers see, for tests that poke the store directly.
    pub state: AppState,
    /// What the extensions were given.
    pub extension_context: ExtensionContext,
    /// The certificate-lifecycle application on its own listener, when
    /// enabled.
    pub certs: Option<attest_certs_api::RunningCerts>,
    loaded: crate::extensions::Loaded,
    /// What the listener serves over HTTPS, when configured.
    tls: Option<TlsSource>,
    /// Reloads the certificate on SIGHUP and on file change.
    _tls_reload: Vec<ReloadTask>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), std::io::Error>>,
    /// Publishes rate-limit counts to the other replicas (held so that it
    /// stops with the server).
    _limits_sync: AbortOnDrop,
    _outbox_discard: Option<AbortOnDrop>,
    _nonce_purge: AbortOnDrop,
    /// Periodic audit checkpoints, when enabled.
    checkpoints: Option<AbortOnDrop>,
}

/// A background task that ends with its owner (also when a test drops
/// the server without shutting it down).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl RunningServer {
    /// Base URL, e.g. `http://127.0.0.1:41234` (`https://` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The listener's TLS certificate source, when it serves HTTPS.
    pub fn tls(&self) -> Option<&TlsSource> {
        self.tls.as_ref()
    }

    /// Re-reads the TLS certificate, key and client CA files, as SIGHUP
    /// does (a failure is logged and keeps the previous certificate); a
    /// no-op on plain HTTP.
    pub fn reload_tls(&self) -> Result<(), attest_tls::TlsError> {
        self.tls.as_ref().map_or(Ok(()), TlsSource::reload)
    }

    /// Stops accepting connections, lets in-flight requests finish, and
    /// waits for the server to end.
    pub async fn shutdown(mut self) -> Result<(), StartupError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        drop(self.checkpoints.take());
        let certs = match self.certs.take() {
            Some(certs) => certs.shutdown().await.map_err(StartupError::Serve),
            None => Ok(()),
        };
        let served = match self.task.await {
            Ok(result) => result.map_err(StartupError::Serve),
            Err(join) => Err(StartupError::Serve(std::io::Error::other(join.to_string()))),
        };
        self.loaded.shutdown().await;
        served.and(certs)
    }
}

/// Builds the application state: database (migrated), CA, authenticator.
pub async fn prepare(settings: Settings, clock: SharedClock) -> Result<AppState, StartupError> {
    let store = open_store(&settings, &clock).await?;
    let ca = Arc::new(load_ca(&settings, &clock)?);
    let checkpoint_signer = CheckpointSigner::load_or_create(
        &settings.audit.checkpoint_key_dir,
        settings.audit.checkpoint_key_passphrase.clone(),
    )
    .map_err(StartupError::CheckpointKey)?;
    warn_key_at_rest(
        "the audit checkpoint key",
        checkpoint_signer.passphrase_source(),
        "ITL_AUDIT_CHECKPOINT_KEY_PASSPHRASE",
        checkpoint_signer.path(),
    );
    if checkpoint_signer.created() {
        tracing::info!(key_id = %checkpoint_signer.key_id(), "created the audit checkpoint key");
    }
    let master_key = crate::keys::master_key(&settings.master_key)?;
    let auth = authenticator(&settings, &store, &ca, &clock)?;
    let factory = attest_image_factory::FactoryClient::new(
        &settings.machines.image_factory_url,
        settings.machines.image_factory_timeout,
    )
    .map_err(|e| StartupError::Factory(e.to_string()))?;
    warn_about_risky_settings(&settings);
    let limits = Arc::new(crate::limits::Limits::new(
        crate::limits::PerMinute {
            register: settings.limits.register_per_minute,
            attest: settings.limits.attest_per_minute,
            host_enroll: settings.limits.host_enroll_per_minute,
        },
        settings.limits.sources.clone(),
    ));
    Ok(AppState {
        limits,
        store,
        auth: Arc::new(auth),
        ca,
        checkpoint_signer: Arc::new(checkpoint_signer),
        master_key,
        clock,
        settings: Arc::new(settings),
        factory,
        events: crate::events::EventSink::new(),
        crl: Default::default(),
        activity: Activity::new(),
        telemetry: Telemetry::new(),
        extensions: Arc::new(Vec::new()),
    })
}

/// The schemas of both applications (extensions add their own): the
/// attestation service's core and the certificate lifecycle's.
pub const APPLICATION_MIGRATIONS: [attest_store::MigrationSet; 2] =
    [CORE_MIGRATIONS, attest_certs_store::CERTS_MIGRATIONS];

/// Connects to the database and brings its schema up to date.
async fn open_store(settings: &Settings, clock: &SharedClock) -> Result<Store, StartupError> {
    let store = Store::connect_with(
        &settings.database_url,
        StoreOptions {
            max_connections: settings.db_max_connections,
            acquire_timeout: settings.db_acquire_timeout,
            ..StoreOptions::default()
        },
    )
    .await?
    .with_clock(clock.clone());
    let report = store.migrate(&APPLICATION_MIGRATIONS).await?;
    tracing::info!(
        database = %store.redacted_url(),
        backend = %store.backend(),
        "database ready: applied {} migrations ({} total)",
        report.applied,
        report.total
    );
    Ok(store)
}

/// Loads the enrollment CA, creating it on first start.
fn load_ca(settings: &Settings, clock: &SharedClock) -> Result<EnrollmentCa, StartupError> {
    let ca = EnrollmentCa::load_or_create(
        &settings.ca_dir,
        CaOptions {
            algorithm: match settings.ca_algorithm {
                CaAlgorithm::EcP384 => attest_pki::CaAlgorithm::EcP384,
                CaAlgorithm::Rsa4096 => attest_pki::CaAlgorithm::Rsa4096,
            },
            key_passphrase: settings.ca_key_passphrase.clone(),
            ..CaOptions::default()
        },
        clock.clone(),
    )?;
    warn_key_at_rest(
        "the enrollment CA key",
        ca.passphrase_source(),
        "ITL_CA_KEY_PASSPHRASE",
        &settings.ca_dir,
    );
    if ca.created() {
        tracing::info!(subject = %ca.subject(), "created a new enrollment CA");
    }
    Ok(ca)
}

/// A key protected by a passphrase stored next to it, or not at all, is
/// only as safe as the directory: say so at every start.
fn warn_key_at_rest(
    what: &str,
    source: &PassphraseSource,
    setting: &str,
    location: &std::path::Path,
) {
    match source {
        PassphraseSource::Configured => {}
        PassphraseSource::File(path) => tracing::warn!(
            passphrase_file = %path.display(),
            "{what} is encrypted with a passphrase stored next to it; set {setting} (from a \
             secret store) for real protection at rest"
        ),
        PassphraseSource::Unencrypted => tracing::warn!(
            location = %location.display(),
            "{what} is NOT encrypted at rest"
        ),
    }
}

/// Operator authentication: OIDC, operator certificates checked against
/// the CA and the issuance records, break-glass.
fn authenticator(
    settings: &Settings,
    store: &Store,
    ca: &Arc<EnrollmentCa>,
    clock: &SharedClock,
) -> Result<OperatorAuthenticator, StartupError> {
    let auth = OperatorAuthenticator::new(
        AuthConfig {
            oidc: settings.oidc.as_ref().map(|o| {
                let mut config = OidcConfig::new(o.issuer.clone());
                config.audience = o.audience.clone();
                config.operator_role = o.operator_role.clone();
                config.client_id = o.client_id.clone();
                config.jwks_refresh_min_interval =
                    chrono::Duration::from_std(o.jwks_refresh_min_interval)
                        .unwrap_or_else(|_| chrono::Duration::seconds(30));
                config
            }),
            admin_token: settings.admin_token.clone(),
            client_cert_header_enabled: settings.client_cert_header,
            tls_client_cert_enabled: tls_verifies_clients(settings),
        },
        Some((
            ca.clone() as Arc<dyn attest_auth::ClientCertVerifier>,
            Arc::new(crate::operators::certs::StoredOperatorCerts(store.clone()))
                as Arc<dyn attest_auth::OperatorCertRegistry>,
        )),
        clock.clone(),
    )?;
    Ok(auth)
}

/// Warnings about settings that trade safety for convenience.
fn warn_about_risky_settings(settings: &Settings) {
    if settings.admin_token.is_some() {
        tracing::warn!("break-glass ITL_ADMIN_TOKEN is enabled; prefer OIDC for normal operations");
    }
    if settings.client_cert_header {
        tracing::warn!(
            "X-Client-Cert is trusted: the TLS proxy in front MUST strip this header from client requests"
        );
    }
    if !settings.delivery.require_encrypted_delivery {
        tracing::warn!(
            "ITL_REQUIRE_ENCRYPTED_DELIVERY is off: GET /api/v1/config?mac= hands an attested \
             machine's full MachineConfig (cluster secrets) in clear to anyone who knows its MAC"
        );
    }
    if settings.machines.register_auto_approve {
        tracing::warn!(
            "ITL_REGISTER_AUTO_APPROVE is on: machines registered through /register skip \
             operator approval (except dual-controlled roles)"
        );
    }
}

/// Whether the listener verifies client certificates, which then reach
/// operator and machine authentication.
fn tls_verifies_clients(settings: &Settings) -> bool {
    settings
        .tls
        .as_ref()
        .is_some_and(crate::config::tls::TlsSettings::verifies_clients)
}

/// The listener's certificate and client verification, loaded now (after
/// the enrollment CA exists: it may be the client CA file), with its
/// reloads on SIGHUP and on file change.
fn load_tls(settings: &Settings) -> Result<Option<(TlsSource, Vec<ReloadTask>)>, StartupError> {
    use crate::config::tls::TlsClientAuth;
    let Some(tls) = &settings.tls else {
        return Ok(None);
    };
    let client_auth = client_auth(tls.client_auth, tls.client_ca_file.as_ref());
    if tls.client_auth == TlsClientAuth::Off && tls.client_ca_file.is_some() {
        tracing::warn!("ITL_TLS_CLIENT_AUTH=off: ITL_TLS_CLIENT_CA_FILE is not used");
    }
    let source = TlsSource::from_files(&tls.cert_file, &tls.key_file, client_auth)?;
    let mut reloads = vec![source.spawn_reload_on_change(attest_tls::DEFAULT_RELOAD_INTERVAL)];
    #[cfg(unix)]
    reloads.push(source.spawn_reload_on_sighup()?);
    Ok(Some((source, reloads)))
}

/// The host services lent to extensions, built from the state.
pub fn extension_context(state: &AppState) -> ExtensionContext {
    ExtensionContext::new(HostParts {
        store: state.store.clone(),
        clock: state.clock.clone(),
        node_events: state.events.bus().clone(),
        activity: state.activity.clone(),
        telemetry: state.telemetry.clone(),
        env: state.settings.extensions.env.clone(),
        master_key: state.master_key.clone(),
        operators: state.auth.clone(),
        machines: Arc::new(HostMachineAuth {
            store: state.store.clone(),
            ca: state.ca.clone(),
            mode: state.settings.extensions.machine_auth,
            client_cert_header: state.settings.client_cert_header,
            tls_client_certs: tls_verifies_clients(&state.settings),
        }),
    })
}

/// Prepares the state, loads `extensions` (those not disabled by
/// configuration), binds, and serves in the background. The binary
/// chooses the extensions (the `attestation` binary's built-ins are listed
/// in `crates/cli/src/builtin.rs`; a binary with third-party extensions
/// adds its own).
pub async fn start_with(
    settings: Settings,
    clock: SharedClock,
    extensions: Vec<Arc<dyn Extension>>,
) -> Result<RunningServer, StartupError> {
    let listen = settings.listen;
    let grace = settings.shutdown_timeout;
    let mut state = prepare(settings, clock).await?;
    let (tls, tls_reload) = load_tls(&state.settings)?.unzip();
    let extension_context = extension_context(&state);
    let mut loaded = crate::extensions::load(
        &extensions,
        &state.settings.extensions.disabled,
        &extension_context,
        &app::core_paths(),
    )
    .await?;
    state.extensions = Arc::new(loaded.infos.clone());
    if state.settings.extensions.machine_auth
        == crate::config::extensions::MachineAuthMode::EkFingerprint
        && loaded.infos.iter().any(|e| e.name == "secret_vault")
    {
        tracing::warn!(
            "ITL_MACHINE_AUTH=ek-fingerprint: machines fetch secrets by naming their EK \
             fingerprint, which is public (it is in webhook payloads and the API); set \
             ITL_MACHINE_AUTH=enrollment-cert with TLS client certificates \
             (ITL_TLS_CLIENT_CA_FILE) or behind a TLS proxy that forwards them"
        );
    }
    let mounts = std::mem::take(&mut loaded.mounts);
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| StartupError::Bind {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartupError::Bind {
        addr: listen,
        source,
    })?;
    let router = app::build(state.clone(), mounts);
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(attest_tls::serve(
        listener,
        router,
        tls.clone(),
        async move {
            let _ = rx.await;
        },
        grace,
    ));
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!("listening on {scheme}://{addr}");
    let (certs, certs_reload) = start_certs(&state).await?;
    let limits_sync = AbortOnDrop(tokio::spawn(sync_limits(state.clone())));
    let nonce_purge = AbortOnDrop(tokio::spawn(purge_nonces(state.clone())));
    let outbox_discard = (!state.activity.has_consumer())
        .then(|| AbortOnDrop(tokio::spawn(discard_outbox(state.clone()))));
    // After the extensions subscribed, so webhooks see the first checkpoint.
    let checkpoints = state
        .settings
        .audit
        .checkpoint_interval
        .map(|every| AbortOnDrop(crate::checkpoints::spawn_periodic(state.clone(), every)));
    Ok(RunningServer {
        addr,
        state,
        extension_context,
        certs,
        loaded,
        tls,
        _tls_reload: tls_reload
            .unwrap_or_default()
            .into_iter()
            .chain(certs_reload)
            .collect(),
        shutdown: Some(tx),
        task,
        _limits_sync: limits_sync,
        _outbox_discard: outbox_discard,
        _nonce_purge: nonce_purge,
        checkpoints,
    })
}

/// Binds and starts the certificate-lifecycle application when enabled:
/// the same store, clock and operator authentication as the attestation
/// API, on its own listener, over HTTPS unless turned off. Returns the
/// reload tasks of its certificate files, if any.
async fn start_certs(
    state: &AppState,
) -> Result<(Option<attest_certs_api::RunningCerts>, Vec<ReloadTask>), StartupError> {
    let settings = &state.settings;
    if !settings.certs.enabled {
        return Ok((None, Vec::new()));
    }
    let (tls, reloads) = match &settings.certs.tls {
        Some(tls) => {
            let (source, reloads) = certs_tls(tls, state)?;
            (Some(source), reloads)
        }
        None => {
            tracing::warn!(
                "ITL_CERTS_TLS=off: the certificate lifecycle API serves plain HTTP; API keys \
                 cross the network in clear unless a TLS proxy is in front"
            );
            (None, Vec::new())
        }
    };
    let listen = settings.certs.listen;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| StartupError::Bind {
            addr: listen,
            source,
        })?;
    let config = attest_certs_api::CertsConfig {
        listen,
        auth_type: settings.certs.auth_type,
        bootstrap_token: settings.certs.bootstrap_token.clone(),
        operator_role: settings.certs.operator_role.clone(),
        max_body_bytes: settings.max_body_bytes,
        request_timeout: settings.request_timeout,
        shutdown_timeout: settings.shutdown_timeout,
    };
    let certs_state = attest_certs_api::CertsState {
        store: state.store.clone(),
        clock: state.clock.clone(),
        operators: state.auth.clone(),
        config: Arc::new(config),
        master_key: state.master_key.clone(),
        authorities: Default::default(),
    };
    let running = attest_certs_api::start(certs_state, listener, tls).await?;
    Ok((Some(running), reloads))
}

/// The certificate-lifecycle listener's TLS: the operator's files
/// (reloaded on change and SIGHUP), or a certificate its own CA issues.
fn certs_tls(
    tls: &crate::config::certs::CertsTlsSettings,
    state: &AppState,
) -> Result<(TlsSource, Vec<ReloadTask>), StartupError> {
    use crate::config::certs::CertsCertificate;
    let client_auth = client_auth(tls.client_auth, tls.client_ca_file.as_ref());
    match &tls.certificate {
        CertsCertificate::Files {
            cert_file,
            key_file,
        } => {
            let source = TlsSource::from_files(cert_file, key_file, client_auth)?;
            let mut reloads =
                vec![source.spawn_reload_on_change(attest_tls::DEFAULT_RELOAD_INTERVAL)];
            #[cfg(unix)]
            reloads.push(source.spawn_reload_on_sighup()?);
            Ok((source, reloads))
        }
        CertsCertificate::SelfIssued { dir, names } => {
            let issued = attest_certs_api::listener_tls::prepare(
                dir,
                names,
                &state.master_key,
                state.clock.now(),
            )
            .map_err(|e| StartupError::CertsTls(e.to_string()))?;
            if issued.created_ca {
                tracing::info!(
                    ca = %issued.ca_file.display(),
                    "created the certificate lifecycle listener's CA: clients trust this file"
                );
            }
            if issued.issued {
                tracing::info!(names = %names.join(","), "issued the certificate lifecycle listener's server certificate");
            }
            let source = TlsSource::from_pem(
                issued.chain_pem.as_bytes(),
                issued.key_pem.as_bytes(),
                client_auth,
            )?;
            Ok((source, Vec::new()))
        }
    }
}

/// Client-certificate verification as configured.
fn client_auth(
    mode: crate::config::tls::TlsClientAuth,
    ca_file: Option<&std::path::PathBuf>,
) -> attest_tls::ClientAuth {
    use crate::config::tls::TlsClientAuth;
    let ca_files = ca_file.into_iter().cloned().collect();
    match mode {
        TlsClientAuth::Off => attest_tls::ClientAuth::off(),
        TlsClientAuth::Optional => attest_tls::ClientAuth::optional(ca_files),
        TlsClientAuth::Required => attest_tls::ClientAuth::required(ca_files),
    }
}

/// How often recorded activity is discarded when no extension consumes it.
const OUTBOX_DISCARD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// With no outbox consumer loaded (webhooks disabled), recorded activity
/// has no reader: drop it in batches so the outbox does not grow. (All
/// replicas are expected to load the same extensions.)
async fn discard_outbox(state: AppState) {
    crate::periodic::every(OUTBOX_DISCARD_INTERVAL, || async {
        let dropped = state
            .store
            .write(|tx| {
                Box::pin(async move {
                    Ok::<_, attest_store::StoreError>(
                        attest_store::OutboxRepo::take(tx, 4096).await?.len(),
                    )
                })
            })
            .await;
        if let Err(e) = dropped {
            tracing::debug!(error = %e, "could not discard unconsumed activity");
        }
    })
    .await;
}

/// How often challenges past their retention are removed (a challenge
/// itself no longer purges, so that it costs one statement).
const NONCE_PURGE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Removes nonces past [`attest_store::NONCE_RETENTION_MS`] now and every
/// [`NONCE_PURGE_INTERVAL`]. Every replica does; the deletes are idempotent.
async fn purge_nonces(state: AppState) {
    crate::periodic::every(NONCE_PURGE_INTERVAL, || async {
        let now_ms = state.clock.now().timestamp_millis();
        let purged = state
            .store
            .write(|tx| Box::pin(attest_store::NonceRepo::purge(tx, now_ms)))
            .await;
        match purged {
            Ok(0) => {}
            Ok(n) => tracing::debug!(purged = n, "removed challenges past their retention"),
            Err(e) => tracing::warn!(error = %e, "could not purge old challenges"),
        }
    })
    .await;
}

/// How often a replica publishes its rate-limit counts and reads the
/// others'.
const LIMITS_SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Publishes rate-limit counts every [`LIMITS_SYNC_INTERVAL`] until the
/// server stops. A failure only delays agreement between replicas.
async fn sync_limits(state: AppState) {
    crate::periodic::every(LIMITS_SYNC_INTERVAL, || async {
        let now_ms = state.clock.now().timestamp_millis();
        if let Err(e) = state.limits.sync(&state.store, now_ms).await {
            tracing::warn!(error = %e, "could not share rate-limit counts with other replicas");
        }
    })
    .await;
}

/// Runs until SIGTERM or Ctrl-C, then shuts down gracefully.
pub async fn run(
    settings: Settings,
    clock: SharedClock,
    extensions: Vec<Arc<dyn Extension>>,
) -> Result<(), StartupError> {
    let server = start_with(settings, clock, extensions).await?;
    shutdown_signal().await;
    server.shutdown().await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("received Ctrl-C"),
        () = terminate => tracing::info!("received SIGTERM"),
    }
}
