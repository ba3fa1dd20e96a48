//! The composition root: open the store → make sure an admin can exist → start the actors → serve
//! HTTP. Shutdown runs the other way: not ready → drain HTTP → stop actors → flush the store.
//! The tests boot the app through [`start`] exactly as `deskbridge serve` does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::middleware::{DefaultHeaders, Next, from_fn};
use actix_web::{HttpServer, web};
use anyhow::Context as _;
use tracing::Instrument as _;

use crate::actors::Actors;
use crate::auth::{self, LoginThrottle};
use crate::config::{Config, LogFormat};
use crate::domain::lifecycle::ReopenWindow;
use crate::domain::{Role, User, UserId};
use crate::metrics::{Metrics, StatusLabel};
use crate::service::{AppState, SyncHandle};
use crate::store::Store;

/// A running appliance.
pub struct Running {
    pub addr: SocketAddr,
    pub state: web::Data<AppState>,
    server: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    tls: Option<Arc<crate::http::tls::CertResolver>>,
}

/// Starts everything; returns once the server listens and `/readyz` answers 200.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let config = Arc::new(config);
    let metrics = Metrics::new();
    let data_dir = config.storage.data_dir.clone();
    let store = Arc::new(open_store(&config, metrics.clone())?);
    let setup_token = ensure_admin(&config, &store).await?;
    auth::release_hash_buffers();
    let window = ReopenWindow {
        days: config.portal.reopen_window_days,
    };
    let secret_key = secret_key(&config, &store).await?;
    let actors = Actors::start(Arc::clone(&store), window);
    sweep_replies(
        Arc::downgrade(&store),
        time::Duration::days(i64::from(config.portal.idempotency_ttl_days)),
    );
    let saved = crate::settings::load(&store, &secret_key)?;
    let sdp = crate::settings::effective(&config, &saved);
    let portal = crate::sync::PortalRules {
        window,
        max_file_bytes: config.portal.max_attachment_bytes,
    };
    let sync = SyncHandle::start(&sdp, Arc::clone(&store), actors.publisher(), portal)?;
    let ready = Arc::new(AtomicBool::new(false));
    let state = web::Data::new(AppState {
        config: Arc::clone(&config),
        store,
        actors,
        throttle: LoginThrottle::new(
            config.auth.login_attempts_per_account,
            config.auth.login_attempts_per_address,
        ),
        setup_token: std::sync::Mutex::new(setup_token.clone()),
        ready: Arc::clone(&ready),
        metrics,
        sync,
        streams: crate::service::StreamSlots::default(),
        secret_key,
        trusted_proxies: config.trusted_proxies()?,
        oidc: crate::oidc::Oidc::new(&config.oidc)
            .context("cannot set up single sign-on ([oidc])")?,
    });

    let app_state = state.clone();
    let frame_ancestors = config.portal.frame_ancestors.clone();
    let server = HttpServer::new(move || {
        actix_web::App::new()
            .app_data(app_state.clone())
            .wrap(security_headers(&frame_ancestors))
            .wrap(from_fn(crate::http::client::hsts))
            .wrap(from_fn(observe))
            .configure(crate::http::configure)
            .configure(crate::web::configure)
            .default_service(web::to(crate::http::not_found))
    })
    .disable_signals()
    .shutdown_timeout(config.server.shutdown_timeout_secs);
    let (cert, key) = (&config.server.tls_cert_file, &config.server.tls_key_file);
    let (server, tls) = if cert.as_os_str().is_empty() {
        (server.bind(config.bind_addr()), None)
    } else {
        let (tls_config, resolver) = crate::http::tls::server_config(cert, key)?;
        crate::http::tls::reload_on_sighup(Arc::clone(&resolver))?;
        (
            server.bind_rustls_0_23(config.bind_addr(), tls_config),
            Some(resolver),
        )
    };
    let server =
        server.with_context(|| format!("cannot listen on {} (server.bind)", config.server.bind))?;
    let addr = *server
        .addrs()
        .first()
        .context("the server bound no address")?;
    let server = server.run();
    let handle = server.handle();
    let task = tokio::spawn(server);

    ready.store(true, Ordering::SeqCst);
    tracing::info!(%addr, data_dir = %data_dir.display(), version = env!("CARGO_PKG_VERSION"), "deskbridge ready");
    if let Some(token) = setup_token {
        announce_setup(&config, addr, tls.is_some(), &token);
    }
    Ok(Running {
        addr,
        state,
        server: handle,
        task,
        tls,
    })
}

fn open_store(config: &Config, metrics: Metrics) -> anyhow::Result<Store> {
    let data_dir = &config.storage.data_dir;
    Store::open(
        data_dir,
        config.storage.cache_mb,
        &config.portal.ticket_prefix,
        metrics,
    )
    .with_context(|| {
        format!(
            "cannot open the store in {} (storage.data_dir)",
            data_dir.display()
        )
    })
}

/// The key that seals console-saved secrets; secrets an earlier version kept in clear are sealed.
async fn secret_key(config: &Config, store: &Store) -> anyhow::Result<crate::settings::SecretKey> {
    let secret_key = crate::settings::SecretKey::load(&config.storage)?;
    if crate::settings::seal_clear_text(store, &secret_key)? {
        store.durable().await?;
        tracing::info!(
            "console-saved secrets stored in clear text by an earlier version are now sealed"
        );
    }
    Ok(secret_key)
}

impl Running {
    /// Reads the TLS certificate and key files again, as SIGHUP does; without TLS, nothing to do.
    pub fn reload_tls(&self) -> anyhow::Result<()> {
        self.tls.as_ref().map_or(Ok(()), |tls| tls.reload())
    }

    /// Graceful stop: `/readyz` turns 503, in-flight requests finish, the store is flushed and closed.
    pub async fn stop(self) {
        self.state.ready.store(false, Ordering::SeqCst);
        self.server.stop(true).await;
        if let Ok(Err(e)) = self.task.await {
            tracing::error!(error = %e, "http server stopped with an error");
        }
        self.state.sync.stop().await;
        let store = Arc::clone(&self.state.store);
        drop(self.state);
        // The actors hold the store until their mailboxes close, which happens on their arbiter
        // once the last address is gone; wait for that so the data dir can be reopened at once.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&store) > 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if let Err(e) = store.flush() {
            tracing::error!(error = %e, "final store flush failed");
        }
        tracing::info!("deskbridge stopped");
    }
}

/// Forgets stored idempotency replies older than `kept`, a minute after start and then hourly. It
/// holds the store weakly, so it never keeps a stopped appliance's store open.
fn sweep_replies(store: std::sync::Weak<Store>, kept: time::Duration) {
    tokio::spawn(async move {
        let mut wait = Duration::from_mins(1);
        loop {
            tokio::time::sleep(wait).await;
            wait = Duration::from_hours(1);
            let Some(store) = store.upgrade() else {
                return;
            };
            let cutoff = time::OffsetDateTime::now_utc() - kept;
            let swept =
                tokio::task::spawn_blocking(move || crate::tickets::expire_replies(&store, cutoff))
                    .await;
            match swept {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(replies = n, "expired idempotency replies forgotten"),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "idempotency sweep failed; trying again later");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "idempotency sweep stopped; trying again later");
                }
            }
        }
    });
}

/// Makes sure someone can administer the appliance: the configured bootstrap admin, or a one-time
/// setup token. Returns the token when one is needed.
async fn ensure_admin(config: &Config, store: &Arc<Store>) -> anyhow::Result<Option<String>> {
    if store.any_admin()? {
        return Ok(None);
    }
    let b = &config.bootstrap;
    if b.admin_email.is_empty() {
        return Ok(Some(auth::new_secret("")));
    }
    let email = crate::domain::user::normalize_email(&b.admin_email);
    if let Some(existing) = store.user_by_email(&email)? {
        anyhow::bail!(
            "bootstrap.admin_email {email} belongs to an existing {:?} account; choose another address",
            existing.role
        );
    }
    let user = User {
        id: UserId::new(),
        email,
        name: b.admin_name.trim().to_owned(),
        role: Role::Admin,
        organization: String::new(),
        org: None,
        password_hash: auth::hash_password(b.admin_password.expose()),
        disabled: false,
        created_at: time::OffsetDateTime::now_utc(),
    };
    store
        .create_user(&user)
        .map_err(|e| anyhow::anyhow!("cannot create the bootstrap admin: {e}"))?;
    store.durable().await?;
    tracing::info!(admin = %user.email, "bootstrap admin created");
    Ok(None)
}

fn announce_setup(config: &Config, addr: SocketAddr, tls: bool, token: &str) {
    let base = if config.server.public_url.is_empty() {
        format!("{}://{addr}", if tls { "https" } else { "http" })
    } else {
        config.server.public_url.trim_end_matches('/').to_owned()
    };
    tracing::warn!(setup_token = %token, "no admin account exists yet: create the first one with this one-time setup token");
    eprintln!(
        "\n  No admin account exists yet. Open {base}/admin/setup and enter this one-time setup token:\n\n    \
         {token}\n\n  or create the admin from a shell:\n\n    \
         curl -X POST {base}/api/v1/setup -H 'Content-Type: application/json' \\\n      \
         -d '{{\"token\": \"{token}\", \"email\": \"admin@example.com\", \"name\": \"Admin\", \"password\": \"choose-a-long-one\"}}'\n\n  \
         Or set bootstrap.admin_email and bootstrap.admin_password (see config/deskbridge.toml).\n"
    );
}

/// Headers on every response unless a handler sets its own. Scripts and styles load only from
/// `/static` (no inline script); framing is refused unless `portal.frame_ancestors` names origins.
fn security_headers(frame_ancestors: &str) -> DefaultHeaders {
    let ancestors = if frame_ancestors.trim().is_empty() {
        "'none'"
    } else {
        frame_ancestors.trim()
    };
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors {ancestors}"
    );
    let headers = DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "same-origin"))
        .add(("Content-Security-Policy", csp))
        .add(("Cache-Control", "no-store"));
    // Older browsers know only X-Frame-Options, which cannot name origins.
    if ancestors == "'none'" {
        headers.add(("X-Frame-Options", "DENY"))
    } else {
        headers
    }
}

/// Counts responses by status class and logs each request (never its query string, which may hold
/// a webhook secret).
async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.path().to_owned();
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.metrics.clone());
    let span = tracing::info_span!("http", %method, %path);
    let response = next.call(req).instrument(span).await?;
    let status = response.status();
    if let Some(metrics) = metrics {
        let class = format!("{}xx", status.as_u16() / 100);
        metrics
            .http_responses
            .get_or_create(&StatusLabel { class })
            .inc();
    }
    tracing::debug!(%method, %path, status = status.as_u16(), micros = started.elapsed().as_micros(), "request");
    Ok(response)
}

/// Logs to stderr as `log.level` and `log.format` say (`RUST_LOG` overrides the level).
pub(crate) fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    // Colours only on a terminal: the journal and log files get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Ctrl+C or SIGTERM (systemd's stop, a container's).
pub(crate) async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler works on Unix");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
