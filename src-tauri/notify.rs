//! OS-native desktop notifications (adapter). The engine decides what to
//! show; this only shows, replaces and closes, and turns button clicks back
//! into engine inputs.
//!
//! Linux: the freedesktop `org.freedesktop.Notifications` service over
//! D-Bus (zbus) — one signal stream carries every action, and any
//! notification can be closed by id when the offer is resolved elsewhere.
//! Windows and macOS: notify-rust, compile-gated (not buildable here).
//! No notification daemon is a normal case: one log line, and the in-app
//! alert carries the offer.

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
    /// that raised them ended (signed out, refused), so none can be acted
    /// on any more.
    CloseAll,
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
pub fn spawn(
    clicked: mpsc::UnboundedSender<Clicked>,
    fallback: mpsc::UnboundedSender<FallbackAlert>,
    window_out_of_sight: WindowOutOfSight,
) -> mpsc::UnboundedSender<NotifyCommand> {
    let (tx, rx) = mpsc::unbounded_channel();
    tauri::async_runtime::spawn(platform::run(rx, clicked, fallback, window_out_of_sight));
    tx
}

/// Whether the main window is out of sight (hidden to the tray, or
/// minimised), asked when there is no notification service: an alert then
/// needs the app's own alert window, or nothing on screen would show it.
pub type WindowOutOfSight = Box<dyn Fn() -> bool + Send + Sync>;

/// With no notification service: alerts go to the app's own alert window
/// while the main window is out of sight (its in-app alert shows them
/// otherwise); the rest is dropped.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
async fn without_service(
    rx: &mut mpsc::UnboundedReceiver<NotifyCommand>,
    fallback: &mpsc::UnboundedSender<FallbackAlert>,
    window_out_of_sight: &WindowOutOfSight,
) {
    let mut in_fallback: std::collections::HashSet<NotificationKey> = Default::default();
    while let Some(cmd) = rx.recv().await {
        match cmd {
            // The alert window keeps its own countdown.
            NotifyCommand::Show(n) if n.refresh => {}
            NotifyCommand::Show(n) if n.style == NotificationStyle::Alert => {
                if in_fallback.contains(&n.key) || window_out_of_sight() {
                    in_fallback.insert(n.key);
                    let _ = fallback.send(FallbackAlert::Show(n.key));
                }
            }
            NotifyCommand::Show(_) => {}
            NotifyCommand::Close(key) => {
                if in_fallback.remove(&key) {
                    let _ = fallback.send(FallbackAlert::Close(key));
                }
            }
            NotifyCommand::CloseAll => {
                for key in in_fallback.drain() {
                    let _ = fallback.send(FallbackAlert::Close(key));
                }
            }
        }
    }
}

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

    async fn connect() -> zbus::Result<(NotificationsProxy<'static>, Vec<String>)> {
        let conn = zbus::Connection::session().await?;
        let proxy = NotificationsProxy::new(&conn).await?;
        let caps = proxy.get_capabilities().await?;
        Ok((proxy, caps))
    }

    pub async fn run(
        mut rx: mpsc::UnboundedReceiver<NotifyCommand>,
        clicked: mpsc::UnboundedSender<Clicked>,
        fallback: mpsc::UnboundedSender<FallbackAlert>,
        window_out_of_sight: WindowOutOfSight,
    ) {
        let (proxy, caps) = match connect().await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "no desktop notification service; alerts stay in the window, or the app's alert window while it is hidden or minimised");
                without_service(&mut rx, &fallback, &window_out_of_sight).await;
                return;
            }
        };
        let actions_ok = caps.iter().any(|c| c == "actions");
        let markup = caps.iter().any(|c| c == "body-markup");
        if !actions_ok {
            tracing::warn!(
                "the notification service has no buttons; alerts use the app's own alert window"
            );
        }
        // Alerts currently in the fallback window.
        let mut in_fallback: std::collections::HashSet<NotificationKey> = Default::default();
        tracing::info!(?caps, "desktop notifications ready");
        let mut by_key: HashMap<NotificationKey, u32> = HashMap::new();
        let mut by_id: HashMap<u32, NotificationKey> = HashMap::new();
        let mut invoked = match proxy.receive_action_invoked().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for notification actions");
                return;
            }
        };
        let mut closed = proxy.receive_notification_closed().await.ok();
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    None => return,
                    // A countdown update for a notification not (or no
                    // longer) shown: the agent dismissed it, or it is in
                    // the alert window, which counts down itself.
                    Some(NotifyCommand::Show(n)) if n.refresh && !by_key.contains_key(&n.key) => {}
                    Some(NotifyCommand::Show(n)) if !actions_ok && n.style == NotificationStyle::Alert => {
                        in_fallback.insert(n.key);
                        let _ = fallback.send(FallbackAlert::Show(n.key));
                    }
                    Some(NotifyCommand::Show(n)) => {
                        let replaces = by_key.get(&n.key).copied().unwrap_or(0);
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
                                by_key.insert(n.key, id);
                                by_id.insert(id, n.key);
                            }
                            Err(e) => tracing::warn!(error = %e, "showing a notification failed"),
                        }
                    }
                    Some(NotifyCommand::Close(key)) => {
                        if in_fallback.remove(&key) {
                            let _ = fallback.send(FallbackAlert::Close(key));
                        }
                        if let Some(id) = by_key.remove(&key) {
                            by_id.remove(&id);
                            if let Err(e) = proxy.close_notification(id).await {
                                tracing::debug!(error = %e, "closing a notification failed");
                            }
                        }
                    }
                    Some(NotifyCommand::CloseAll) => {
                        for key in in_fallback.drain() {
                            let _ = fallback.send(FallbackAlert::Close(key));
                        }
                        by_id.clear();
                        for (_, id) in by_key.drain() {
                            if let Err(e) = proxy.close_notification(id).await {
                                tracing::debug!(error = %e, "closing a notification failed");
                            }
                        }
                    }
                },
                Some(sig) = invoked.next() => {
                    if let Ok(args) = sig.args() {
                        if let (Some(key), Some(action)) = (by_id.get(&args.id).copied(), action_from_key(&args.action_key)) {
                            let _ = clicked.send((key, action));
                        }
                    }
                }
                Some(sig) = async { match closed.as_mut() { Some(s) => s.next().await, None => std::future::pending().await } } => {
                    if let Ok(args) = sig.args() {
                        if let Some(key) = by_id.remove(&args.id) {
                            by_key.remove(&key);
                        }
                    }
                }
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
