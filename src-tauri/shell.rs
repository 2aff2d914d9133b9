//! The shell's managed state: the signed-in session and the embedded demo
//! hub. Each operation here is what one command calls.

use std::path::PathBuf;

use switchboard_client::session::{self, Session};
use switchboard_client::view::{self, Customer360View, ViewRead, ViewUpdate};
use switchboard_client::wall_clock::WallClock;
use switchboard_client::{AgentAction, ClientHandle, HubEndpoint, Input};
use switchboard_hub::{demo, RunningHub};
use switchboard_protocol::{AgentProfile, ConversationId};
use tauri::{AppHandle, Manager};
use tokio::sync::Mutex;

use crate::error::{IpcError, IpcErrorCode};
use crate::events::emit;
use crate::models::{LastLogin, ShellEvent, SignInRequest};
use crate::sink::DesktopSink;

/// Managed by Tauri (`app.manage`).
pub struct Shell {
    data_dir: PathBuf,
    session: Mutex<Option<Session>>,
    demo: Mutex<Option<RunningHub>>,
    /// The OS's time zone and hour cycle, read once (time labels).
    wall_clock: WallClock,
}

fn invalid(msg: &str) -> IpcError {
    IpcError::new(IpcErrorCode::InvalidInput, msg)
}

impl Shell {
    /// State rooted at the app's data directory.
    pub fn new(data_dir: PathBuf) -> Self {
        Shell {
            data_dir,
            session: Mutex::new(None),
            demo: Mutex::new(None),
            wall_clock: WallClock::from_environment(),
        }
    }

    fn last_login_path(&self) -> PathBuf {
        self.data_dir.join("last-login.json")
    }

    /// The sign-in form's defaults.
    pub fn last_login(&self) -> LastLogin {
        std::fs::read(self.last_login_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// The running client, if signed in.
    pub async fn client(&self) -> Result<ClientHandle, IpcError> {
        self.session
            .lock()
            .await
            .as_ref()
            .map(|s| s.handle.clone())
            .ok_or_else(|| IpcError::new(IpcErrorCode::NotSignedIn, "not signed in"))
    }

    /// Signs in to a hub.
    pub async fn sign_in(
        &self,
        app: &AppHandle,
        req: SignInRequest,
    ) -> Result<AgentProfile, IpcError> {
        let url = req.hub_url.trim().trim_end_matches('/').to_owned();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid("the hub URL must start with http:// or https://"));
        }
        if req.username.trim().is_empty() || req.password.is_empty() {
            return Err(invalid("user name and password are required"));
        }
        self.sign_out(app).await;
        let session = session::sign_in(
            HubEndpoint::new(&url),
            req.username.trim(),
            &req.password,
            &self.data_dir,
            "switchboard-desktop",
            DesktopSink::new(app.clone()),
        )
        .await?;
        let last = LastLogin {
            hub_url: url,
            username: req.username.trim().to_owned(),
        };
        if let Err(e) = std::fs::create_dir_all(&self.data_dir).and_then(|_| {
            std::fs::write(
                self.last_login_path(),
                serde_json::to_vec(&last).unwrap_or_default(),
            )
        }) {
            tracing::warn!(error = %e, "could not remember the last login");
        }
        let focused = app
            .get_webview_window(crate::sink::MAIN_LABEL)
            .and_then(|w| w.is_focused().ok())
            .unwrap_or(false);
        let _ = session.handle.input(Input::Focus(focused)).await;
        if let Some(r) = &session.recovered {
            emit(
                app,
                ShellEvent::CacheRecovered {
                    moved_to: r.moved_to.display().to_string(),
                },
            );
        }
        let profile = session.profile.clone();
        *self.session.lock().await = Some(session);
        emit(
            app,
            ShellEvent::SignedIn {
                profile: profile.clone(),
            },
        );
        Ok(profile)
    }

    /// Starts the embedded demo hub on loopback and signs in to it.
    pub async fn start_demo(&self, app: &AppHandle) -> Result<AgentProfile, IpcError> {
        let url = {
            let mut demo_hub = self.demo.lock().await;
            if demo_hub.is_none() {
                let config = demo::demo_config(
                    self.data_dir.join("demo-hub.db"),
                    std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                );
                let mut running = switchboard_hub::start(config)
                    .await
                    .map_err(|e| IpcError::new(IpcErrorCode::Internal, format!("demo hub: {e}")))?;
                let sim =
                    demo::spawn_simulator(running.hub.clone(), 8.0, running.shutdown_signal());
                running.adopt(sim);
                *demo_hub = Some(running);
            }
            demo_hub.as_ref().map(|h| h.http_url()).unwrap_or_default()
        };
        self.sign_in(
            app,
            SignInRequest {
                hub_url: url,
                username: demo::DEMO_USER.into(),
                password: demo::DEMO_PASSWORD.into(),
            },
        )
        .await
    }

    /// Ends the session (the cache stays for the next sign-in).
    pub async fn sign_out(&self, app: &AppHandle) {
        if let Some(s) = self.session.lock().await.take() {
            s.handle.shutdown().await;
            let _ = s.task.await;
            crate::tray::show_menu(app, None);
            emit(app, ShellEvent::SignedOut);
        }
    }

    /// The view, and the conversation in front if it may have changed.
    pub async fn view_update(&self, read: ViewRead) -> Result<ViewUpdate, IpcError> {
        let clock = self.wall_clock.clone();
        Ok(self
            .client()
            .await?
            .query(move |e| view::view_update(e, &read, &clock))
            .await?)
    }

    /// The hub endpoint and token of the session, for REST look-ups.
    async fn rest(&self) -> Result<(HubEndpoint, String), IpcError> {
        self.session
            .lock()
            .await
            .as_ref()
            .map(|s| (s.endpoint.clone(), s.token.clone()))
            .ok_or_else(|| IpcError::new(IpcErrorCode::NotSignedIn, "not signed in"))
    }

    /// Customer records matching a search.
    pub async fn search_records(
        &self,
        query: switchboard_protocol::rest::RecordSearch,
    ) -> Result<Vec<switchboard_protocol::rest::Contact>, IpcError> {
        let (hub, token) = self.rest().await?;
        Ok(hub.search_records(&token, &query).await?)
    }

    /// Customer 360 of a contact.
    pub async fn customer_360(
        &self,
        id: switchboard_protocol::ContactId,
    ) -> Result<Customer360View, IpcError> {
        let (hub, token) = self.rest().await?;
        let record = hub.customer_360(&token, id).await?;
        let settings = self
            .client()
            .await?
            .query(|e| e.state().settings.clone())
            .await?;
        Ok(view::customer_360_view(record, &self.wall_clock, &settings))
    }

    /// Quick create of a contact.
    pub async fn create_contact(
        &self,
        contact: switchboard_protocol::rest::NewContact,
    ) -> Result<switchboard_protocol::rest::Contact, IpcError> {
        let (hub, token) = self.rest().await?;
        Ok(hub.create_contact(&token, &contact).await?)
    }

    /// Quick create of an account.
    pub async fn create_account(
        &self,
        account: switchboard_protocol::rest::NewAccount,
    ) -> Result<switchboard_protocol::rest::Account, IpcError> {
        let (hub, token) = self.rest().await?;
        Ok(hub.create_account(&token, &account).await?)
    }

    /// Links a conversation to a record or case.
    pub async fn link_record(
        &self,
        id: ConversationId,
        link: switchboard_protocol::rest::LinkRequest,
    ) -> Result<switchboard_protocol::ConversationSummary, IpcError> {
        let (hub, token) = self.rest().await?;
        Ok(hub.link_conversation(&token, id, &link).await?)
    }

    /// Teammates and queues.
    pub async fn team_directory(
        &self,
    ) -> Result<switchboard_protocol::rest::TeamDirectory, IpcError> {
        let (hub, token) = self.rest().await?;
        Ok(hub.team_directory(&token).await?)
    }

    /// An agent action.
    pub async fn act(&self, action: AgentAction) -> Result<(), IpcError> {
        Ok(self.client().await?.input(Input::Agent(action)).await?)
    }

    /// A desktop notification button or body was clicked.
    pub async fn notification_clicked(
        &self,
        key: switchboard_client::engine::NotificationKey,
        action: switchboard_client::engine::NotificationAction,
    ) {
        if let Ok(c) = self.client().await {
            let _ = c.input(Input::Notification { key, action }).await;
        }
    }

    /// Window focus changed.
    pub async fn focus(&self, focused: bool) {
        if let Ok(c) = self.client().await {
            let _ = c.input(Input::Focus(focused)).await;
        }
    }
}
