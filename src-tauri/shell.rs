//! The shell's managed state: the signed-in session and the embedded demo
//! hub. Each operation here is what one command calls.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use switchboard_client::session::{self, Session};
use switchboard_client::view::{self, Customer360View, EarlierMessages, ViewRead, ViewUpdate};
use switchboard_client::wall_clock::WallClock;
use switchboard_client::{AgentAction, ClientHandle, HubEndpoint, Input};
use switchboard_hub::{demo, RunningHub};
use switchboard_protocol::{AgentProfile, ConversationId};
use tauri::{AppHandle, Manager};
use tokio::sync::Mutex;

use crate::error::{IpcError, IpcErrorCode};
use crate::events::emit;
use crate::keychain::{Account, Keychain, KeychainError};
use crate::models::{KeptSession, LastLogin, ShellEvent, SignInRequest};
use crate::sink::DesktopSink;

/// Messages one "Show earlier messages" reads.
const EARLIER_PAGE: u32 = 100;

/// Managed by Tauri (`app.manage`).
pub struct Shell {
    data_dir: PathBuf,
    session: Mutex<Option<Current>>,
    /// Numbers sessions (see [`DesktopSink`]'s `session`).
    sessions_started: AtomicU64,
    /// What became of the session kept from the last run, or of the last
    /// session if the hub refused it (until the next sign-in).
    kept: std::sync::Mutex<KeptSession>,
    keychain: Keychain,
    /// Keychain writes one at a time, in the order they were asked for: a
    /// save held up by an unlock prompt must not land after the sign-out
    /// that forgot its token.
    keychain_writes: Mutex<()>,
    demo: Mutex<Option<RunningHub>>,
    /// The OS's time zone and hour cycle, read once (time labels).
    wall_clock: WallClock,
}

/// The running session, its number, and the account its token is kept
/// under in the keychain (none for the demo).
struct Current {
    session: Session,
    number: u64,
    account: Option<Account>,
}

/// Stops a session's runtime and has the hub revoke its token (best
/// effort: a hub that cannot be reached keeps it until it expires).
async fn end(session: Session) {
    end_then(session, || {}).await;
}

/// [`end`], calling `stopped` once the session's runtime has stopped
/// (it performs no more effects) and before the hub is told.
async fn end_then(session: Session, stopped: impl FnOnce()) {
    session.handle.shutdown().await;
    let _ = session.task.await;
    stopped();
    match tokio::time::timeout(SIGN_OUT_PATIENCE, session.endpoint.logout(&session.token)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::info!(error = %e, "the hub did not revoke the token"),
        Err(_) => tracing::info!("the hub did not answer the sign-out in time"),
    }
}

/// Whether a sign-in's token goes to the keychain.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// A hub the agent signed in to: resumed at the next start.
    Yes,
    /// The embedded demo hub (a new port each start): not kept.
    No,
}

/// How long quitting waits for the session's runtime to stop.
const QUIT_STOP_PATIENCE: Duration = Duration::from_secs(3);

/// How long signing out waits for the hub to revoke the token.
const SIGN_OUT_PATIENCE: Duration = Duration::from_secs(3);

fn invalid(msg: &str) -> IpcError {
    IpcError::new(IpcErrorCode::InvalidInput, msg)
}

impl Shell {
    /// State rooted at the app's data directory.
    pub fn new(data_dir: PathBuf) -> Self {
        Shell {
            data_dir,
            session: Mutex::new(None),
            sessions_started: AtomicU64::new(0),
            kept: std::sync::Mutex::default(),
            keychain: Keychain,
            keychain_writes: Mutex::new(()),
            demo: Mutex::new(None),
            wall_clock: WallClock::from_environment(),
        }
    }

    fn last_login_path(&self) -> PathBuf {
        self.data_dir.join("last-login.json")
    }

    /// The sign-in form's defaults.
    pub fn last_login(&self) -> LastLogin {
        let mut last: LastLogin = std::fs::read(self.last_login_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        last.kept_session = self.kept_session();
        last
    }

    fn kept_session(&self) -> KeptSession {
        self.kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Records where the kept session stands and tells the UI.
    fn set_kept(&self, app: &AppHandle, kept: KeptSession) {
        *self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = kept.clone();
        emit(app, ShellEvent::KeptSession { kept });
    }

    /// The end of resume number `number`. If a sign-in by hand has started
    /// since, the form is the agent's: the resume only stops saying it is
    /// under way (and never overwrites what that sign-in led to).
    fn resume_settled(&self, app: &AppHandle, number: u64, kept: KeptSession) {
        if self.is_newest(number) {
            self.set_kept(app, kept);
        } else if matches!(self.kept_session(), KeptSession::Resuming { .. }) {
            self.set_kept(app, KeptSession::Quiet);
        }
    }

    /// The running client, if signed in.
    pub async fn client(&self) -> Result<ClientHandle, IpcError> {
        self.session
            .lock()
            .await
            .as_ref()
            .map(|c| c.session.handle.clone())
            .ok_or_else(|| IpcError::new(IpcErrorCode::NotSignedIn, "not signed in"))
    }

    /// Signs in to a hub; the token goes to the keychain for the next start.
    pub async fn sign_in(
        &self,
        app: &AppHandle,
        req: SignInRequest,
    ) -> Result<AgentProfile, IpcError> {
        self.sign_in_keeping(app, req, Keep::Yes).await
    }

    async fn sign_in_keeping(
        &self,
        app: &AppHandle,
        req: SignInRequest,
        keep: Keep,
    ) -> Result<AgentProfile, IpcError> {
        let url = req.hub_url.trim().trim_end_matches('/').to_owned();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid("the hub URL must start with http:// or https://"));
        }
        if req.username.trim().is_empty() || req.password.is_empty() {
            return Err(invalid("user name and password are required"));
        }
        // Numbered first: a resume still under way is now the older one.
        let number = self.next_session_number();
        self.sign_out(app).await;
        let session = session::sign_in(
            HubEndpoint::new(&url),
            req.username.trim(),
            &req.password,
            &self.data_dir,
            "switchboard-desktop",
            DesktopSink::new(app.clone(), number),
        )
        .await?;
        let account = Account {
            hub_url: url,
            username: req.username.trim().to_owned(),
        };
        self.set_kept(app, KeptSession::Quiet);
        let last = LastLogin {
            hub_url: account.hub_url.clone(),
            username: account.username.clone(),
            kept_session: KeptSession::Quiet,
        };
        if let Err(e) = std::fs::create_dir_all(&self.data_dir).and_then(|_| {
            std::fs::write(
                self.last_login_path(),
                serde_json::to_vec(&last).unwrap_or_default(),
            )
        }) {
            tracing::warn!(error = %e, "could not remember the last login");
        }
        let token = session.token.clone();
        let account = (keep == Keep::Yes).then_some(account);
        let profile = self
            .install(
                app,
                Current {
                    session,
                    number,
                    account: account.clone(),
                },
            )
            .await
            .ok_or_else(|| IpcError::new(IpcErrorCode::Internal, "a newer sign-in took over"))?;
        if let Some(account) = account {
            let _writing = self.keychain_writes.lock().await;
            // Signed out (or replaced) before the keychain's turn came:
            // that session's token is not kept.
            let still_in_place = self
                .session
                .lock()
                .await
                .as_ref()
                .is_some_and(|c| c.number == number);
            if still_in_place {
                if let Err(e) = self.keychain.save(&account, &token).await {
                    tracing::warn!(error = %e, "the session ends with the app: the next start asks to sign in");
                }
            }
        }
        Ok(profile)
    }

    /// At start: resumes the last account's session with the token the
    /// keychain kept, if any, without asking for the password
    /// (`session::resume`). The form says a resume is under way while it
    /// is ([`KeptSession::Resuming`]: the keychain may be asking to be
    /// unlocked, the hub may be slow); a token the hub refuses is forgotten
    /// and the form says so, as it says why a resume failed. Without a
    /// keychain or a kept token, the form is there as before. A sign-in by
    /// hand meanwhile takes precedence.
    pub async fn resume(&self, app: &AppHandle) {
        self.resume_kept(app).await;
        // A start that leaves nobody signed in (nothing kept, a refused or
        // failed resume) shows the sign-in form: hidden in the tray after
        // a login start, the agent would take the silence for a quiet day.
        self.show_if_signed_out(app).await;
    }

    /// Shows the main window when no session runs (and none is being
    /// started by hand).
    async fn show_if_signed_out(&self, app: &AppHandle) {
        if self.session.lock().await.is_none() {
            crate::sink::show_main_window(app);
        }
    }

    async fn resume_kept(&self, app: &AppHandle) {
        let last = self.last_login();
        if last.username.is_empty() || last.hub_url.is_empty() {
            return;
        }
        let number = self.next_session_number();
        let account = Account {
            hub_url: last.hub_url,
            username: last.username,
        };
        self.set_kept(
            app,
            KeptSession::Resuming {
                username: account.username.clone(),
                hub_url: account.hub_url.clone(),
            },
        );
        let token = match self.keychain.load(&account).await {
            Ok(Some(token)) => token,
            Ok(None) => return self.resume_settled(app, number, KeptSession::Quiet),
            // A desktop without a keychain: sign in at each start, as
            // before (the warning says why).
            Err(e @ KeychainError::Unavailable(_)) => {
                tracing::warn!(error = %e, "sign in to start");
                return self.resume_settled(app, number, KeptSession::Quiet);
            }
            Err(e) => {
                tracing::warn!(error = %e, "sign in to start");
                let message = e.to_string();
                return self.resume_settled(app, number, KeptSession::Failed { message });
            }
        };
        match session::resume(
            HubEndpoint::new(&account.hub_url),
            &account.username,
            &token,
            &self.data_dir,
            "switchboard-desktop",
            DesktopSink::new(app.clone(), number),
        )
        .await
        {
            Ok(session) => {
                tracing::info!(user = %account.username, "session resumed");
                let current = Current {
                    session,
                    number,
                    account: Some(account),
                };
                // None: the agent signed in by hand meanwhile.
                let _ = self.install(app, current).await;
                self.resume_settled(app, number, KeptSession::Quiet);
            }
            Err(switchboard_client::ClientError::Refused(e)) => {
                tracing::info!(message = %e.message, "the kept session was refused; sign in again");
                // Unless a sign-in by hand has started since: its token
                // may be going to the same keychain item.
                if self.is_newest(number) {
                    let _writing = self.keychain_writes.lock().await;
                    if let Err(e) = self.keychain.forget(&account).await {
                        tracing::warn!(error = %e, "could not forget the refused token");
                    }
                    self.set_kept(app, KeptSession::Refused);
                    emit(app, ShellEvent::SignedOut { refused: true });
                } else {
                    self.resume_settled(app, number, KeptSession::Quiet);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not resume the session; sign in to start");
                let message = e.to_string();
                self.resume_settled(app, number, KeptSession::Failed { message });
            }
        }
    }

    /// Supersedes a resume under way ("Sign in instead"): when it ends, the
    /// session it started is ended instead of installed, and the form
    /// stops saying a resume is under way.
    pub async fn cancel_resume(&self, app: &AppHandle) {
        // Under the session lock, as `install` decides: a resume installed
        // already is the session (its SignedIn is on the way), and
        // superseding it then would leave it running with every effect
        // dropped (`DesktopSink`).
        let slot = self.session.lock().await;
        if slot.is_some() {
            return;
        }
        if matches!(self.kept_session(), KeptSession::Resuming { .. }) {
            self.next_session_number();
            self.set_kept(app, KeptSession::Quiet);
        }
    }

    fn next_session_number(&self) -> u64 {
        self.sessions_started.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Whether session `number` is the newest started (a sign-in or a
    /// resume since supersedes it).
    pub fn is_newest(&self, number: u64) -> bool {
        self.sessions_started.load(Ordering::SeqCst) == number
    }

    /// Makes `current` the session and tells the UI, if no newer sign-in
    /// or resume has started since it did (else it is ended, and `None`).
    /// An older session found in place (a resume that finished after a
    /// sign-in by hand began) is ended.
    async fn install(&self, app: &AppHandle, current: Current) -> Option<AgentProfile> {
        let (stale, displaced) = {
            let mut slot = self.session.lock().await;
            if self.is_newest(current.number) {
                let displaced = slot.take();
                *slot = Some(current);
                (None, displaced)
            } else {
                (Some(current), None)
            }
        };
        for ended in [stale, displaced].into_iter().flatten() {
            tracing::info!(number = ended.number, "ending a superseded session");
            end(ended.session).await;
        }
        let slot = self.session.lock().await;
        let current = slot.as_ref()?;
        let focused = app
            .get_webview_window(crate::sink::MAIN_LABEL)
            .and_then(|w| w.is_focused().ok())
            .unwrap_or(false);
        let _ = current.session.handle.input(Input::Focus(focused)).await;
        if let Some(r) = &current.session.recovered {
            emit(
                app,
                ShellEvent::CacheRecovered {
                    moved_to: r.moved_to.as_ref().map(|p| p.display().to_string()),
                },
            );
        }
        let profile = current.session.profile.clone();
        drop(slot);
        emit(
            app,
            ShellEvent::SignedIn {
                profile: profile.clone(),
            },
        );
        Some(profile)
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
        self.sign_in_keeping(
            app,
            SignInRequest {
                hub_url: url,
                username: demo::DEMO_USER.into(),
                password: demo::DEMO_PASSWORD.into(),
            },
            Keep::No,
        )
        .await
    }

    /// The agent signs out: the session ends, the keychain forgets its
    /// token and the hub revokes it (the cache stays for the next
    /// sign-in). The UI hears at once; the rest follows.
    pub async fn sign_out(&self, app: &AppHandle) {
        let current = self.session.lock().await.take();
        if let Some(current) = current {
            self.close(app, current, false).await;
        }
    }

    /// The hub refused session number `number`'s token: it ends, the
    /// keychain forgets the token, and the sign-in form says why. A
    /// refusal from a session already replaced changes nothing.
    pub async fn session_refused(&self, app: &AppHandle, number: u64) {
        let current = {
            let mut slot = self.session.lock().await;
            match slot.as_ref() {
                Some(c) if c.number == number => slot.take(),
                _ => None,
            }
        };
        if let Some(current) = current {
            *self
                .kept
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = KeptSession::Refused;
            self.close(app, current, true).await;
            // Signed out by the hub (expired, revoked), perhaps hidden in
            // the tray: the sign-in form comes forward and says why.
            crate::sink::show_main_window(app);
        }
    }

    /// Ends a session taken out of the slot: the UI and tray first; once
    /// its runtime has stopped, what it raised on the desktop is withdrawn
    /// (the ring, notifications, the alert window, the count in the
    /// title: none of it can be acted on now), the hub revokes the token,
    /// and then the keychain forgets it.
    async fn close(&self, app: &AppHandle, current: Current, refused: bool) {
        crate::tray::show_menu(app, None);
        emit(app, ShellEvent::SignedOut { refused });
        // The session ends first: forgetting may wait behind a save held
        // up by an unlock prompt, and meanwhile nothing may ring or arrive.
        end_then(current.session, || crate::sink::withdraw_alerts(app)).await;
        if let Some(account) = current.account {
            let _writing = self.keychain_writes.lock().await;
            if let Err(e) = self.keychain.forget(&account).await {
                tracing::warn!(error = %e, "could not forget the token");
            }
        }
    }

    /// The view, and the conversation in front if it may have changed.
    pub async fn view_update(&self, read: ViewRead) -> Result<ViewUpdate, IpcError> {
        let clock = self.wall_clock.current();
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
            .map(|c| (c.session.endpoint.clone(), c.session.token.clone()))
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
        Ok(view::customer_360_view(
            record,
            &self.wall_clock.current(),
            &settings,
        ))
    }

    /// A page of a conversation's messages from before `before`, the
    /// oldest the window shows (the cache keeps the most recent
    /// [`switchboard_client::engine::RECENT_MESSAGES`]): read from the
    /// hub, not kept.
    pub async fn earlier_messages(
        &self,
        conversation: switchboard_protocol::ConversationId,
        before: switchboard_protocol::MessageId,
    ) -> Result<EarlierMessages, IpcError> {
        let (hub, token) = self.rest().await?;
        let page = hub
            .history_before(&token, conversation, before, EARLIER_PAGE + 1)
            .await?;
        let settings = self
            .client()
            .await?
            .query(|e| e.state().settings.clone())
            .await?;
        Ok(view::earlier_messages(
            page,
            EARLIER_PAGE as usize,
            &self.wall_clock.current(),
            &settings,
        ))
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

    /// A supervisor's team's open conversations, waiting ones first.
    pub async fn team_conversations(
        &self,
    ) -> Result<Vec<switchboard_protocol::ConversationSummary>, IpcError> {
        let (hub, token) = self.rest().await?;
        Ok(hub.team_conversations(&token).await?)
    }

    /// The agent's team's team chats nobody owns yet.
    pub async fn waiting_team_chats(
        &self,
    ) -> Result<Vec<switchboard_protocol::rest::WaitingTeamChat>, IpcError> {
        let (hub, token) = self.rest().await?;
        Ok(hub.waiting_team_chats(&token).await?)
    }

    /// A supervisor resets a teammate's presence after the hub changed it
    /// (Inactive after a missed offer, say): back to what the teammate had
    /// set, or Available. Returns the presence set.
    pub async fn reset_presence(
        &self,
        agent: switchboard_protocol::AgentId,
    ) -> Result<switchboard_protocol::Presence, IpcError> {
        let (hub, token) = self.rest().await?;
        Ok(hub.reset_agent_presence(&token, agent).await?)
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

    /// Before the app quits: the session's runtime stops (its cache
    /// written; the token stays valid and kept, so the next start resumes
    /// the session), then what it raised on the desktop is withdrawn.
    /// Stopped first, as an offer that came meanwhile would raise an alert
    /// the exit leaves on screen.
    pub async fn prepare_quit(&self, app: &AppHandle) {
        let stop = async {
            let current = self.session.lock().await.take();
            if let Some(current) = current {
                current.session.handle.shutdown().await;
                let _ = current.session.task.await;
            }
        };
        if tokio::time::timeout(QUIT_STOP_PATIENCE, stop)
            .await
            .is_err()
        {
            tracing::info!("the session did not stop in time for the quit");
        }
        crate::sink::withdraw_alerts_before_quit(app).await;
    }

    /// Start at login could not be registered: the setting goes back to off.
    pub async fn start_at_login_failed(&self) {
        if let Ok(c) = self.client().await {
            let _ = c.input(Input::StartAtLoginFailed).await;
        }
    }
}
