//! OS-native desktop notifications (adapter). The engine decides what to
//! show; this only shows, replaces and closes, and turns button clicks back
//! into engine inputs.
//!
//! Linux: the freedesktop `org.freedesktop.Notifications` service over
//! D-Bus (zbus) — one signal stream carries every action, and any
//! notification can be closed by id when the offer is resolved elsewhere.
//! Windows and macOS: notify-rust, compile-gated (not buildable here).
//! No notification daemon is a normal case: one log line, and the in-app
//! alert (or the app's alert window, while the main window is out of
//! sight) carries the offer. The daemon may also come after the app (a
//! login start can beat it), crash or be replaced: the notifier watches
//! the bus name and follows it, and an alert a lost daemon held, or could
//! not take, goes to the alert window rather than nowhere.

use std::collections::HashMap;

use switchboard_client::engine::{
    AnswerWords, NotificationAction, NotificationKey, NotificationStyle, OsNotification,
};
use tokio::sync::mpsc;

/// What the notifier is asked to do.
#[derive(Debug)]
pub enum NotifyCommand {
    /// Show or replace.
    Show(OsNotification),
    /// Close.
    Close(NotificationKey),
    /// Close every notification and fallback alert shown: the session
    /// that raised them ended (signed out, refused) or the app is quitting,
    /// so none can be acted on any more. `done` is answered once they are
    /// closed (dropped unanswered if the notifier cannot get to them).
    CloseAll {
        /// Answered when done.
        done: Option<tokio::sync::oneshot::Sender<()>>,
    },
    /// The main window may have gone out of sight (hidden to the tray,
    /// minimised, or it lost focus on the way there): alerts only its
    /// in-app alert showed move to the alert window now, not at their
    /// next countdown tick (up to 10 s later; never, for an offer whose
    /// template shows no countdown).
    WindowSightChanged,
}

/// A click on a notification.
pub type Clicked = (NotificationKey, NotificationAction);

/// Alerts for the app's own always-on-top alert window, used when the
/// notification server cannot show buttons.
#[derive(Debug)]
pub enum FallbackAlert {
    /// Show (or refresh) an alert.
    Show(NotificationKey),
    /// The alert was resolved.
    Close(NotificationKey),
}

/// Escapes text for freedesktop body markup (`& < >`).
pub fn escape_markup(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // Controls other than newline and tab confuse some daemons.
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// The D-Bus action keys for our actions ("default" is the body click).
pub fn action_key(a: NotificationAction) -> &'static str {
    match a {
        NotificationAction::Accept => "accept",
        NotificationAction::Reject => "reject",
        NotificationAction::Open => "default",
    }
}

fn action_from_key(k: &str) -> Option<NotificationAction> {
    match k {
        "accept" => Some(NotificationAction::Accept),
        "reject" => Some(NotificationAction::Reject),
        "default" | "open" => Some(NotificationAction::Open),
        _ => None,
    }
}

/// A button's label in the words the offer is answered with.
fn label(a: NotificationAction, words: AnswerWords) -> &'static str {
    match a {
        NotificationAction::Accept => words.accept(),
        NotificationAction::Reject => words.reject(),
        NotificationAction::Open => "Open",
    }
}

/// Starts the notifier task; returns the command sender. Clicks arrive on
/// `clicked`; alerts the server cannot show with buttons go to `fallback`.
///
/// `ledger` is where the ids of the notifications on screen are kept, so
/// the next run can close what a crashed or killed one left up.
pub fn spawn(
    clicked: mpsc::UnboundedSender<Clicked>,
    fallback: mpsc::UnboundedSender<FallbackAlert>,
    window_out_of_sight: WindowOutOfSight,
    ledger: std::path::PathBuf,
) -> mpsc::UnboundedSender<NotifyCommand> {
    let (tx, rx) = mpsc::unbounded_channel();
    tauri::async_runtime::spawn(platform::run(
        rx,
        clicked,
        fallback,
        window_out_of_sight,
        ledger,
    ));
    tx
}

/// Whether the main window is out of sight (hidden to the tray, or
/// minimised), asked when there is no notification service: an alert then
/// needs the app's own alert window, or nothing on screen would show it.
pub type WindowOutOfSight = Box<dyn Fn() -> bool + Send + Sync>;

#[cfg(target_os = "linux")]
mod platform {
    use super::*;
    use futures_util::StreamExt;
    use zbus::zvariant::Value;

    #[zbus::proxy(
        interface = "org.freedesktop.Notifications",
        default_service = "org.freedesktop.Notifications",
        default_path = "/org/freedesktop/Notifications"
    )]
    trait Notifications {
        #[allow(clippy::too_many_arguments)]
        fn notify(
            &self,
            app_name: &str,
            replaces_id: u32,
            app_icon: &str,
            summary: &str,
            body: &str,
            actions: &[&str],
            hints: HashMap<&str, Value<'_>>,
            expire_timeout: i32,
        ) -> zbus::Result<u32>;
        fn close_notification(&self, id: u32) -> zbus::Result<()>;
        fn get_capabilities(&self) -> zbus::Result<Vec<String>>;
        #[zbus(signal)]
        fn action_invoked(&self, id: u32, action_key: String) -> zbus::Result<()>;
        #[zbus(signal)]
        fn notification_closed(&self, id: u32, reason: u32) -> zbus::Result<()>;
    }

    const SERVICE: &str = "org.freedesktop.Notifications";
    /// `NotificationClosed` reason: closed by a call to CloseNotification.
    const CLOSED_BY_CALL: u32 = 3;

    async fn connect(
        conn: &zbus::Connection,
    ) -> zbus::Result<(NotificationsProxy<'static>, Vec<String>)> {
        let proxy = NotificationsProxy::new(conn).await?;
        let caps = proxy.get_capabilities().await?;
        Ok((proxy, caps))
    }

    /// The unique name that owns the service, if any (none also when the
    /// bus cannot say).
    async fn owner_of_service(proxy: &NotificationsProxy<'static>) -> Option<String> {
        let dbus = zbus::fdo::DBusProxy::new(proxy.inner().connection())
            .await
            .ok()?;
        let name = zbus::names::BusName::try_from(SERVICE).ok()?;
        dbus.get_name_owner(name).await.ok().map(|o| o.to_string())
    }

    /// Whether the service's name has an owner.
    async fn service_present(proxy: &NotificationsProxy<'static>) -> bool {
        owner_of_service(proxy).await.is_some()
    }

    /// What is on screen, kept across the service coming and going.
    #[derive(Default)]
    struct Shown {
        /// Alerts in the app's own alert window.
        in_fallback: std::collections::HashSet<NotificationKey>,
        /// Notification ids the service gave, by key and back.
        by_key: HashMap<NotificationKey, u32>,
        by_id: HashMap<u32, NotificationKey>,
        /// Alerts the service shows (with buttons), as last sent.
        alerts: HashMap<NotificationKey, OsNotification>,
        /// Alerts only the in-app alert shows, as last sent: no service
        /// took them (none there, or a lost one held them) while the main
        /// window was in view. Once the window is out of sight
        /// (`WindowSightChanged`, or their next countdown tick) they go to
        /// the alert window; a service that comes shows them at once.
        in_app_only: HashMap<NotificationKey, OsNotification>,
    }

    impl Shown {
        fn put_in_fallback(
            &mut self,
            key: NotificationKey,
            fallback: &mpsc::UnboundedSender<FallbackAlert>,
        ) {
            self.in_fallback.insert(key);
            let _ = fallback.send(FallbackAlert::Show(key));
        }

        /// The service went away, and what it showed with it: alerts it
        /// held go to the alert window while the main window is out of
        /// sight (the in-app alert shows them otherwise).
        fn service_lost(
            &mut self,
            fallback: &mpsc::UnboundedSender<FallbackAlert>,
            window_out_of_sight: &WindowOutOfSight,
        ) {
            self.by_key.clear();
            self.by_id.clear();
            let alerts: Vec<_> = self.alerts.drain().collect();
            if alerts.is_empty() {
                return;
            }
            if window_out_of_sight() {
                for (key, _) in alerts {
                    self.put_in_fallback(key, fallback);
                }
            } else {
                self.in_app_only.extend(alerts);
            }
        }

        fn close_fallback(
            &mut self,
            key: NotificationKey,
            fallback: &mpsc::UnboundedSender<FallbackAlert>,
        ) {
            if self.in_fallback.remove(&key) {
                let _ = fallback.send(FallbackAlert::Close(key));
            }
        }
    }

    /// Why serving with (or without) the service stopped.
    enum Ended {
        /// The app is closing: the command channel closed.
        Closed,
        /// The service went away (or a call to it failed): try again.
        Lost,
        /// The service came on the bus: connect.
        Appeared,
    }

    /// Runs for the app's life. The notification service may be missing
    /// at start (a login start can beat the desktop's daemon), come later,
    /// crash or be replaced: each time the notifier follows it, and while
    /// there is none, alerts go where [`absent`] puts them.
    pub async fn run(
        mut rx: mpsc::UnboundedReceiver<NotifyCommand>,
        clicked: mpsc::UnboundedSender<Clicked>,
        fallback: mpsc::UnboundedSender<FallbackAlert>,
        window_out_of_sight: WindowOutOfSight,
        ledger: std::path::PathBuf,
    ) {
        let conn = match zbus::Connection::session().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "no D-Bus session; alerts stay in the window, or the app's alert window while it is hidden or minimised");
                absent(
                    None,
                    &mut rx,
                    &fallback,
                    &window_out_of_sight,
                    &mut Shown::default(),
                )
                .await;
                return;
            }
        };
        let mut shown = Shown::default();
        let mut said_missing = false;
        loop {
            // Subscribed before connecting, so a service that comes (or
            // goes) in between is not missed.
            let owners = match zbus::fdo::DBusProxy::new(&conn).await {
                Ok(d) => d
                    .receive_name_owner_changed_with_args(&[(0, SERVICE)])
                    .await
                    .ok(),
                Err(_) => None,
            };
            let ended = match connect(&conn).await {
                Ok((proxy, caps)) => {
                    said_missing = false;
                    serve(
                        &proxy,
                        &caps,
                        owners,
                        &mut rx,
                        &clicked,
                        &fallback,
                        &window_out_of_sight,
                        &mut shown,
                        &ledger,
                    )
                    .await
                }
                Err(e) => {
                    if !said_missing {
                        tracing::warn!(error = %e, "no desktop notification service (yet); alerts stay in the window, or the app's alert window while it is hidden or minimised");
                        said_missing = true;
                    }
                    absent(owners, &mut rx, &fallback, &window_out_of_sight, &mut shown).await
                }
            };
            match ended {
                Ended::Closed => return,
                Ended::Lost => {
                    tracing::warn!("the desktop notification service went away");
                    shown.service_lost(&fallback, &window_out_of_sight);
                    // A service that crashed and restarts at once would
                    // otherwise be asked again in a tight loop.
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                Ended::Appeared => tracing::info!("a desktop notification service appeared"),
            }
        }
    }

    /// With no notification service, until one takes the name (`owners`;
    /// without it, for good): alerts go to the app's own alert window
    /// while the main window is out of sight (its in-app alert shows them
    /// otherwise); the rest is dropped.
    async fn absent(
        mut owners: Option<zbus::fdo::NameOwnerChangedStream>,
        rx: &mut mpsc::UnboundedReceiver<NotifyCommand>,
        fallback: &mpsc::UnboundedSender<FallbackAlert>,
        window_out_of_sight: &WindowOutOfSight,
        shown: &mut Shown,
    ) -> Ended {
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    None => return Ended::Closed,
                    // The alert window keeps its own countdown; an
                    // in-app-only alert's tick moves it there once the main
                    // window is out of sight.
                    Some(NotifyCommand::Show(n)) if n.refresh => {
                        if shown.in_app_only.contains_key(&n.key) && window_out_of_sight() {
                            shown.in_app_only.remove(&n.key);
                            shown.put_in_fallback(n.key, fallback);
                        } else if let Some(kept) = shown.in_app_only.get_mut(&n.key) {
                            // The time left, for a service that comes.
                            *kept = n;
                        }
                    }
                    Some(NotifyCommand::Show(n)) if n.style == NotificationStyle::Alert => {
                        if shown.in_fallback.contains(&n.key) || window_out_of_sight() {
                            shown.put_in_fallback(n.key, fallback);
                        } else {
                            // The in-app alert shows it, until the window
                            // goes out of sight.
                            shown.in_app_only.insert(n.key, n);
                        }
                    }
                    Some(NotifyCommand::WindowSightChanged) => {
                        if window_out_of_sight() {
                            for (key, _) in std::mem::take(&mut shown.in_app_only) {
                                shown.put_in_fallback(key, fallback);
                            }
                        }
                    }
                    Some(NotifyCommand::Show(_)) => {}
                    Some(NotifyCommand::Close(key)) => {
                        shown.in_app_only.remove(&key);
                        shown.close_fallback(key, fallback);
                    }
                    Some(NotifyCommand::CloseAll { done }) => {
                        shown.in_app_only.clear();
                        for key in shown.in_fallback.drain() {
                            let _ = fallback.send(FallbackAlert::Close(key));
                        }
                        if let Some(done) = done {
                            let _ = done.send(());
                        }
                    }
                },
                changed = crate::signal_stream::next_or_never(&mut owners) => match changed {
                    Some(sig) => {
                        if sig.args().is_ok_and(|a| a.new_owner().is_some()) {
                            return Ended::Appeared;
                        }
                    }
                    // The bus connection ended: nothing more will come.
                    None => owners = None,
                },
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn serve(
        proxy: &NotificationsProxy<'static>,
        caps: &[String],
        owners: Option<zbus::fdo::NameOwnerChangedStream>,
        rx: &mut mpsc::UnboundedReceiver<NotifyCommand>,
        clicked: &mpsc::UnboundedSender<Clicked>,
        fallback: &mpsc::UnboundedSender<FallbackAlert>,
        window_out_of_sight: &WindowOutOfSight,
        shown: &mut Shown,
        ledger: &std::path::Path,
    ) -> Ended {
        let actions_ok = caps.iter().any(|c| c == "actions");
        let markup = caps.iter().any(|c| c == "body-markup");
        if !actions_ok {
            tracing::warn!(
                "the notification service has no buttons; alerts use the app's own alert window"
            );
        }
        tracing::info!(?caps, "desktop notifications ready");
        let mut invoked = match proxy.receive_action_invoked().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for notification actions");
                return Ended::Lost;
            }
        };
        let mut closed = proxy.receive_notification_closed().await.ok();
        let mut owners = owners;
        let serving = owner_of_service(proxy).await;
        let mut ledger = Ledger::open(ledger, proxy, serving.clone()).await;
        // Alerts only the in-app alert showed go to this service first, as
        // new notifications (with their sound): before, nothing but the
        // window showed them, and an offer whose template shows no
        // countdown has no tick to bring it here.
        let mut replay: std::collections::VecDeque<OsNotification> = shown
            .in_app_only
            .drain()
            .map(|(_, mut n)| {
                n.refresh = false;
                n
            })
            .collect();
        loop {
            tokio::select! {
                cmd = async {
                    match replay.pop_front() {
                        Some(n) => Some(NotifyCommand::Show(n)),
                        None => rx.recv().await,
                    }
                } => match cmd {
                    None => return Ended::Closed,
                    // A countdown update for a notification not (or no
                    // longer) shown: the agent dismissed it, or it is in
                    // the alert window, which counts down itself.
                    Some(NotifyCommand::Show(n)) if n.refresh && !shown.by_key.contains_key(&n.key)
                        && !shown.in_app_only.contains_key(&n.key) => {}
                    // Already in the alert window (put there while there
                    // was no service, or none with buttons): it stays there.
                    Some(NotifyCommand::Show(n)) if n.style == NotificationStyle::Alert
                        && (!actions_ok || shown.in_fallback.contains(&n.key)) => {
                        shown.put_in_fallback(n.key, fallback);
                    }
                    // Shown (an in-app-only alert's tick shows it again, here).
                    Some(NotifyCommand::Show(n)) => {
                        shown.in_app_only.remove(&n.key);
                        let replaces = shown.by_key.get(&n.key).copied().unwrap_or(0);
                        let body = n.body.join("\n");
                        let body = if markup { escape_markup(&body) } else { body };
                        let mut actions: Vec<&str> = Vec::new();
                        if actions_ok {
                            for a in &n.actions {
                                actions.push(action_key(*a));
                                actions.push(label(*a, n.answer_words));
                            }
                            if !n.actions.contains(&NotificationAction::Open) {
                                actions.push("default");
                                actions.push("Open");
                            }
                        }
                        let mut hints: HashMap<&str, Value<'_>> = HashMap::new();
                        let critical = n.style == NotificationStyle::Alert;
                        hints.insert("urgency", Value::U8(if critical { 2 } else { 1 }));
                        hints.insert("category", Value::from(if critical { "im" } else { "im.received" }));
                        hints.insert("desktop-entry", Value::from("switchboard"));
                        if n.refresh {
                            hints.insert("suppress-sound", Value::Bool(true));
                        }
                        // Our own deadline rules: alerts stay until the
                        // engine closes them; toasts expire on their own.
                        let timeout = match (n.style, n.expires_at) {
                            (NotificationStyle::Alert, _) => 0,
                            (_, Some(at)) => {
                                let now = std::time::SystemTime::now()
                                    .duration_since(std::time::UNIX_EPOCH)
                                    .map(|d| d.as_millis() as i64)
                                    .unwrap_or(0);
                                (at.0 - now).clamp(1000, 60_000) as i32
                            }
                            _ => -1,
                        };
                        // The summary is plain text in the spec; keep it so.
                        match proxy.notify("Switchboard", replaces, "", &n.title, &body, &actions, hints, timeout).await {
                            Ok(id) => {
                                // Some services answer a replace with a new
                                // id: the old one is nobody's any more, and
                                // its close (sent or not) must not take this
                                // key's tracking with it.
                                if let Some(old) = shown.by_key.insert(n.key, id).filter(|old| *old != id) {
                                    shown.by_id.remove(&old);
                                }
                                shown.by_id.insert(id, n.key);
                                if critical {
                                    shown.alerts.insert(n.key, n.clone());
                                }
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "showing a notification failed");
                                if !service_present(proxy).await {
                                    // Gone: counted as shown, so that
                                    // `service_lost` puts it in the alert
                                    // window with what the service held.
                                    if critical {
                                        shown.alerts.insert(n.key, n.clone());
                                    }
                                    return Ended::Lost;
                                }
                                // Still there, this one refused: it alone
                                // goes where it would with no service (a
                                // countdown update of one shown stays as
                                // it is).
                                if critical && !n.refresh && window_out_of_sight() {
                                    shown.put_in_fallback(n.key, fallback);
                                } else if critical && !shown.by_key.contains_key(&n.key) {
                                    // In view, the in-app alert shows it;
                                    // kept, the window going out of sight
                                    // moves it to the alert window, and its
                                    // next tick asks the service again.
                                    shown.in_app_only.insert(n.key, n.clone());
                                }
                            }
                        }
                    }
                    Some(NotifyCommand::Close(key)) => {
                        shown.close_fallback(key, fallback);
                        shown.in_app_only.remove(&key);
                        shown.alerts.remove(&key);
                        if let Some(id) = shown.by_key.remove(&key) {
                            shown.by_id.remove(&id);
                            if let Err(e) = proxy.close_notification(id).await {
                                tracing::debug!(error = %e, "closing a notification failed");
                            }
                        }
                    }
                    // In-app-only alerts went to this service when it came
                    // (`replay`); those it refused since wait on the window.
                    Some(NotifyCommand::WindowSightChanged) => {
                        if window_out_of_sight() {
                            for (key, _) in std::mem::take(&mut shown.in_app_only) {
                                shown.put_in_fallback(key, fallback);
                            }
                        }
                    }
                    Some(NotifyCommand::CloseAll { done }) => {
                        for key in shown.in_fallback.drain() {
                            let _ = fallback.send(FallbackAlert::Close(key));
                        }
                        shown.by_id.clear();
                        shown.alerts.clear();
                        shown.in_app_only.clear();
                        for (_, id) in shown.by_key.drain() {
                            if let Err(e) = proxy.close_notification(id).await {
                                tracing::debug!(error = %e, "closing a notification failed");
                            }
                        }
                        // Kept before answering: a quit exits on the answer.
                        ledger.record(shown);
                        if let Some(done) = done {
                            let _ = done.send(());
                        }
                    }
                },
                Some(sig) = invoked.next() => {
                    if let Ok(args) = sig.args() {
                        if let (Some(key), Some(action)) = (shown.by_id.get(&args.id).copied(), action_from_key(&args.action_key)) {
                            let _ = clicked.send((key, action));
                        }
                    }
                }
                Some(sig) = crate::signal_stream::next_or_never(&mut closed) => {
                    if let Ok(args) = sig.args() {
                        // Reason 3 is a CloseNotification call: ours drop
                        // their id before calling, so one still tracked was
                        // closed by the service replacing it in place (some
                        // do on a replace), and the replacement stands.
                        let replaced_in_place = args.reason == CLOSED_BY_CALL;
                        if let Some(key) = shown.by_id.get(&args.id).copied().filter(|_| !replaced_in_place) {
                            shown.by_id.remove(&args.id);
                            // Only while it is still the key's notification.
                            if shown.by_key.get(&key) == Some(&args.id) {
                                shown.by_key.remove(&key);
                                shown.alerts.remove(&key);
                            }
                        }
                    }
                }
                Some(sig) = crate::signal_stream::next_or_never(&mut owners) => {
                    // The daemon quit or crashed, or another took over
                    // (whose ids and buttons are not ours): what it showed
                    // is gone; start again with whoever has the name. (The
                    // stream may first repeat the arrival of the one we
                    // serve: subscribed before connecting.)
                    let new_owner = sig.args().ok().and_then(|a| (**a.new_owner()).as_ref().map(|n| n.to_string()));
                    if new_owner.is_none() || new_owner != serving {
                        return Ended::Lost;
                    }
                }
            }
            ledger.record(shown);
        }
    }

    /// The ids of the notifications this run has on screen, in a file
    /// beside the cache. A run that crashed or was killed leaves its
    /// alerts up (critical, never expiring) with buttons nobody answers,
    /// and the next run raises the same offers again: it closes the ones
    /// left first. Ids are the service's, so they count only for the same
    /// service on the same bus (its unique name and the bus's id match);
    /// otherwise they could be another program's.
    struct Ledger {
        path: std::path::PathBuf,
        /// The bus's id and the service's unique name.
        server: Option<(String, String)>,
        saved: Vec<u32>,
    }

    #[derive(serde::Serialize, serde::Deserialize)]
    struct LedgerFile {
        bus: String,
        service: String,
        ids: Vec<u32>,
    }

    impl Ledger {
        async fn open(
            path: &std::path::Path,
            proxy: &NotificationsProxy<'static>,
            service: Option<String>,
        ) -> Ledger {
            let bus = proxy.inner().connection().server_guid().to_string();
            let server = service.map(|s| (bus, s));
            let left: Option<LedgerFile> = std::fs::read(path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            if let (Some(left), Some((bus, service))) = (left, &server) {
                if left.bus == *bus && left.service == *service {
                    for id in left.ids {
                        tracing::info!(id, "closing a notification an earlier run left up");
                        let _ = proxy.close_notification(id).await;
                    }
                }
            }
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let mut ledger = Ledger {
                path: path.to_owned(),
                server,
                saved: vec![u32::MAX],
            };
            ledger.write(Vec::new());
            ledger
        }

        /// Writes the ids on screen if they changed.
        fn record(&mut self, shown: &Shown) {
            let mut ids: Vec<u32> = shown.by_key.values().copied().collect();
            ids.sort_unstable();
            if ids != self.saved {
                self.write(ids);
            }
        }

        fn write(&mut self, ids: Vec<u32>) {
            let Some((bus, service)) = &self.server else {
                return;
            };
            let file = LedgerFile {
                bus: bus.clone(),
                service: service.clone(),
                ids,
            };
            // Written aside and renamed over: a kill mid-write leaves the
            // old list, not a torn one.
            let aside = self.path.with_extension("json.new");
            let written = serde_json::to_vec(&file)
                .map_err(std::io::Error::other)
                .and_then(|b| std::fs::write(&aside, b))
                .and_then(|()| std::fs::rename(&aside, &self.path));
            match written {
                Ok(()) => self.saved = file.ids,
                Err(e) => tracing::debug!(error = %e, "could not keep the notification ids"),
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod platform {
    //! Windows (toast XML via notify-rust, which escapes text and button
    //! labels) and macOS (mac-notification-sys). Kept small: it cannot be
    //! built on the Linux CI. notify-rust gives no way to close a shown
    //! notification here, so a resolved offer's toast stays until the OS
    //! dismisses it; a click on it then reaches the engine, which ignores
    //! offers that are no longer pending.
    use super::*;

    pub async fn run(
        mut rx: mpsc::UnboundedReceiver<NotifyCommand>,
        clicked: mpsc::UnboundedSender<Clicked>,
        _fallback: mpsc::UnboundedSender<FallbackAlert>,
        _window_out_of_sight: WindowOutOfSight,
        _ledger: std::path::PathBuf,
    ) {
        while let Some(cmd) = rx.recv().await {
            let NotifyCommand::Show(n) = cmd else {
                continue;
            };
            if n.refresh {
                // A toast cannot be replaced here: an update would be a
                // second toast. The first one's countdown stands.
                continue;
            }
            let clicked = clicked.clone();
            let _ = tauri::async_runtime::spawn_blocking(move || {
                let mut note = notify_rust::Notification::new();
                note.summary(&n.title)
                    .body(&n.body.join("\n"))
                    .appname("Switchboard");
                for a in &n.actions {
                    if *a != NotificationAction::Open {
                        note.action(action_key(*a), label(*a, n.answer_words));
                    }
                }
                match note.show() {
                    // Blocks this worker until the agent acts or the OS
                    // dismisses it.
                    Ok(handle) => {
                        let _ =
                            handle.wait_for_response(|r: &notify_rust::NotificationResponse| {
                                let action = match r {
                                    notify_rust::NotificationResponse::Default => {
                                        Some(NotificationAction::Open)
                                    }
                                    notify_rust::NotificationResponse::Action(key) => {
                                        action_from_key(key)
                                    }
                                    _ => None,
                                };
                                if let Some(action) = action {
                                    let _ = clicked.send((n.key, action));
                                }
                            });
                    }
                    Err(e) => tracing::warn!(error = %e, "showing a notification failed"),
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped_and_controls_dropped() {
        assert_eq!(
            escape_markup("<img src=x onerror=alert(1)> & <b>\u{0}x\ny"),
            "&lt;img src=x onerror=alert(1)&gt; &amp; &lt;b&gt;x\ny"
        );
    }

    #[test]
    fn action_keys_round_trip() {
        for a in [
            NotificationAction::Accept,
            NotificationAction::Reject,
            NotificationAction::Open,
        ] {
            assert_eq!(action_from_key(action_key(a)), Some(a));
        }
        assert_eq!(action_from_key("evil"), None);
    }

    #[test]
    fn assign_to_me_buttons_read_yes_and_no() {
        let words = AnswerWords::YesNo;
        assert_eq!(label(NotificationAction::Accept, words), "Yes");
        assert_eq!(label(NotificationAction::Reject, words), "No");
        let words = AnswerWords::AcceptReject;
        assert_eq!(label(NotificationAction::Accept, words), "Accept");
        assert_eq!(label(NotificationAction::Open, words), "Open");
    }
}
