//! Wires the hub to the network: the axum router (WebSocket + REST), plain
//! or TLS listeners, the timer scheduler, and an orderly shutdown.

use axum::serve::ListenerExt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::{Clock, SystemClock};
use crate::config::HubConfig;
use crate::error::{HubError, HubResult};
use crate::hub::Hub;
use crate::{rest, ws};

/// Shared state of every request handler.
#[derive(Clone)]
pub struct AppState {
    /// The hub.
    pub hub: Arc<Hub>,
    /// Flips to `true` when the hub shuts down.
    pub shutdown: watch::Receiver<bool>,
}

/// Largest REST request body.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// The HTTP router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(rest::health))
        .route("/ws", get(ws::upgrade))
        .route("/api/v1/login", post(rest::login))
        .route("/api/v1/logout", post(rest::logout))
        .route("/api/v1/me", get(rest::me))
        .route("/api/v1/conversations/{id}/messages", get(rest::messages))
        .route(
            "/api/v1/conversations/{id}/link",
            post(rest::link_conversation),
        )
        .route("/api/v1/team", get(rest::team))
        .route("/api/v1/team/conversations", get(rest::team_conversations))
        .route("/api/v1/team/waiting", get(rest::waiting_team_chats))
        .route("/api/v1/records/search", get(rest::search_records))
        .route("/api/v1/records/contacts", post(rest::create_contact))
        .route("/api/v1/records/contacts/{id}", get(rest::customer_360))
        .route("/api/v1/records/accounts", post(rest::create_account))
        .route("/api/v1/ingress/messages", post(rest::ingress))
        .route(
            "/api/v1/ingress/conversations/{id}/messages",
            get(rest::ingress_messages),
        )
        .route("/api/v1/agents/{id}/presence", post(rest::set_presence))
        .route(
            "/api/v1/agents/{id}/presence/reset",
            post(rest::reset_presence),
        )
        .route(
            "/api/v1/admin/agents",
            get(rest::list_agents).post(rest::upsert_agent),
        )
        .route("/api/v1/admin/agents/{id}/revoke", post(rest::revoke_agent))
        .route(
            "/api/v1/admin/queues",
            get(rest::list_queues).put(rest::upsert_queue),
        )
        // Unknown paths answer in the protocol's error format too.
        .fallback(|| async { crate::error::HubError::not_found("no such endpoint") })
        // And a known path asked with the wrong method (axum's own answer
        // is an empty 405, which a client cannot decode).
        .method_not_allowed_fallback(|| async {
            crate::error::HubError::refused(
                switchboard_protocol::ErrorCode::NotFound,
                "this endpoint does not take that method",
            )
        })
        .layer(axum::middleware::from_fn(log_request))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Logs each request's method and route (the pattern, not the path, so no
/// ids or search terms reach the log) at debug level: what a soak's hub
/// was asked to do, counted from its log.
async fn log_request(
    route: Option<axum::extract::MatchedPath>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let method = req.method().clone();
    let response = next.run(req).await;
    tracing::debug!(
        %method,
        route = route.as_ref().map_or("unmatched", |r| r.as_str()),
        status = response.status().as_u16(),
        "request"
    );
    response
}

/// A hub serving on a socket.
pub struct RunningHub {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// Whether it serves TLS.
    pub tls: bool,
    /// The hub itself, for in-process use (demo simulator, tests).
    pub hub: Arc<Hub>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningHub {
    /// `ws://…/ws` or `wss://…/ws`.
    pub fn ws_url(&self) -> String {
        format!("{}://{}/ws", if self.tls { "wss" } else { "ws" }, self.addr)
    }

    /// `http://…` or `https://…`, without a trailing slash.
    pub fn http_url(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.addr
        )
    }

    /// A receiver that flips to `true` at shutdown (for helper tasks).
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Adds a task to stop and await at shutdown.
    pub fn adopt(&mut self, task: JoinHandle<()>) {
        self.tasks.push(task);
    }

    /// Closes every connection (code 1001) and stops serving. State is
    /// already durable; nothing is flushed here.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            if tokio::time::timeout(Duration::from_secs(5), t)
                .await
                .is_err()
            {
                tracing::warn!("a hub task did not stop in time");
            }
        }
    }

    /// Waits until the hub stops (after [`RunningHub::shutdown`] from
    /// another handle or a fatal listener error).
    pub async fn wait(mut self) {
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

/// Starts a hub with the system clock.
pub async fn start(config: HubConfig) -> HubResult<RunningHub> {
    start_with_clock(config, Arc::new(SystemClock)).await
}

/// Starts a hub: opens the database, binds, serves, runs the scheduler.
pub async fn start_with_clock(config: HubConfig, clock: Arc<dyn Clock>) -> HubResult<RunningHub> {
    // One crypto provider for the process (ring: no cmake, builds offline).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listen = config.server.listen;
    let tls = config.server.tls.clone();
    let hub = Hub::open(config, clock).await?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let state = AppState {
        hub: hub.clone(),
        shutdown: shutdown_rx.clone(),
    };
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let std_listener = std::net::TcpListener::bind(listen)?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;

    let mut stop = shutdown_rx.clone();
    let server_task = match &tls {
        None => {
            // TCP_NODELAY: an offer must not wait behind Nagle for the
            // peer's delayed ACK of an earlier small frame (~40 ms). The
            // TLS acceptor (axum-server) sets it already.
            let listener = tokio::net::TcpListener::from_std(std_listener)?.tap_io(|tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "TCP_NODELAY not set");
                }
            });
            tokio::spawn(async move {
                let result = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stop.wait_for(|v| *v).await;
                    })
                    .await;
                if let Err(e) = result {
                    tracing::error!(error = %e, "server stopped");
                }
            })
        }
        Some(tls) => {
            let rustls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                .await
                .map_err(|e| {
                    HubError::Io(std::io::Error::new(
                        e.kind(),
                        format!("TLS certificate {:?} / key {:?}: {e}", tls.cert, tls.key),
                    ))
                })?;
            let handle = axum_server::Handle::new();
            let server = axum_server::from_tcp_rustls(std_listener, rustls)?.handle(handle.clone());
            tokio::spawn(async move {
                let _ = stop.wait_for(|v| *v).await;
                handle.graceful_shutdown(Some(Duration::from_secs(2)));
            });
            tokio::spawn(async move {
                if let Err(e) = server.serve(app).await {
                    tracing::error!(error = %e, "TLS server stopped");
                }
            })
        }
    };
    let scheduler = tokio::spawn(run_scheduler(hub.clone(), shutdown_rx));
    tracing::info!(%addr, tls = tls.is_some(), "hub listening");
    Ok(RunningHub {
        addr,
        tls: tls.is_some(),
        hub,
        shutdown: shutdown_tx,
        tasks: vec![server_task, scheduler],
    })
}

/// Fires timers (offer timeouts, grace periods) when due. Timers live in
/// the database, so a restarted hub picks up where it stopped.
async fn run_scheduler(hub: Arc<Hub>, mut shutdown: watch::Receiver<bool>) {
    loop {
        if let Err(e) = hub.fire_due_timers().await {
            tracing::error!(error = %e, "firing timers failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let wait = match hub.next_timer_due().await {
            Ok(Some(due)) => {
                Duration::from_millis((due.0 - hub.now().0).clamp(0, 3_600_000) as u64)
            }
            Ok(None) => Duration::from_secs(3600),
            Err(e) => {
                tracing::error!(error = %e, "reading timers failed");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = hub.timers_changed.notified() => {}
            _ = shutdown.wait_for(|v| *v) => return,
        }
    }
}
