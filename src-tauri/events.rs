//! The one event channel from the shell to the UI. Every event goes
//! through [`emit`] or [`UiEvents`]; the name lives here only.
//!
//! Most engine events only tell the UI "read the view again". Delivering
//! each one costs a script evaluation in the webview, and a flood of
//! customer messages turned into thousands of them: about 28 MiB of
//! webview memory that never came back (issue 7's footprint benchmark).
//! Those events are folded into one [`ShellEvent::ViewChanged`] per
//! [`FOLD_WINDOW`]: the first goes out at once (no added latency for a
//! single message), the rest of a burst in one more event after it. Events
//! that carry something the UI shows by itself (an offer's headline, a
//! toast, a banner, a failed command) still go out one by one, at once.

use std::sync::Arc;
use std::time::Duration;

use switchboard_client::engine::UiEvent;
use tauri::{AppHandle, Emitter};
use tokio::sync::Notify;

use crate::models::ShellEvent;

/// The event name the UI listens to.
pub const EVENT: &str = "switchboard://event";

/// How long view changes are folded together after one is delivered.
pub const FOLD_WINDOW: Duration = Duration::from_millis(50);

/// Sends an event to the UI at once.
pub fn emit(app: &AppHandle, event: ShellEvent) {
    if let Err(e) = app.emit(EVENT, &event) {
        tracing::warn!(error = %e, "emitting a UI event failed");
    }
}

/// Whether the UI needs this event's payload, or only to read the view.
fn carries_payload(event: &UiEvent) -> bool {
    matches!(
        event,
        UiEvent::OfferShown { .. }
            | UiEvent::Toast { .. }
            | UiEvent::Banner { .. }
            | UiEvent::CommandFailed { .. }
    )
}

/// The managed path for engine events to the UI.
pub struct UiEvents {
    app: AppHandle,
    view_changes: ViewChangeFolder,
}

impl UiEvents {
    /// Starts the folding task for `app` (on Tauri's async runtime).
    pub fn start(app: AppHandle) -> Self {
        let emitter = app.clone();
        let (view_changes, delivery) =
            ViewChangeFolder::new(FOLD_WINDOW, move || emit(&emitter, ShellEvent::ViewChanged));
        tauri::async_runtime::spawn(delivery);
        UiEvents { app, view_changes }
    }

    /// Delivers an engine event: at once if the UI needs its payload,
    /// otherwise folded into a view change.
    pub fn engine(&self, event: UiEvent) {
        if carries_payload(&event) {
            emit(&self.app, ShellEvent::Ui { event });
        } else {
            self.view_changes.changed();
        }
    }
}

/// Folds "the view changed" signals: the first is delivered at once, then
/// at most one more per window for everything that came during it. Idle,
/// its task sleeps on a [`Notify`] (no timer runs).
#[derive(Clone)]
pub struct ViewChangeFolder {
    signal: Arc<Notify>,
}

impl ViewChangeFolder {
    /// The folder, and the task (to spawn) that calls `deliver`.
    pub fn new(
        window: Duration,
        deliver: impl Fn() + Send + 'static,
    ) -> (Self, impl std::future::Future<Output = ()> + Send + 'static) {
        let signal = Arc::new(Notify::new());
        let waiting = signal.clone();
        let delivery = async move {
            loop {
                // A change during the window left a permit: the loop
                // delivers once more for all of them.
                waiting.notified().await;
                deliver();
                tokio::time::sleep(window).await;
            }
        };
        (ViewChangeFolder { signal }, delivery)
    }

    /// Notes a change.
    pub fn changed(&self) {
        self.signal.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_burst_is_delivered_at_once_and_then_once_more() {
        tokio::time::pause();
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let (folder, delivery) = ViewChangeFolder::new(Duration::from_millis(50), move || {
            c.fetch_add(1, Ordering::SeqCst);
        });
        tokio::spawn(delivery);
        settle().await;
        assert_eq!(count.load(Ordering::SeqCst), 0, "nothing before a change");
        folder.changed();
        settle().await;
        assert_eq!(
            count.load(Ordering::SeqCst),
            1,
            "the first goes out at once"
        );
        for _ in 0..1000 {
            folder.changed();
        }
        settle().await;
        assert_eq!(
            count.load(Ordering::SeqCst),
            1,
            "the burst waits for the window"
        );
        tokio::time::advance(Duration::from_millis(51)).await;
        settle().await;
        assert_eq!(
            count.load(Ordering::SeqCst),
            2,
            "one more for the whole burst"
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        settle().await;
        assert_eq!(count.load(Ordering::SeqCst), 2, "idle: nothing more");
        folder.changed();
        settle().await;
        assert_eq!(
            count.load(Ordering::SeqCst),
            3,
            "a later change at once again"
        );
    }

    #[test]
    fn only_events_with_something_to_show_bypass_the_folding() {
        assert!(!carries_payload(&UiEvent::SettingsChanged));
        assert!(!carries_payload(&UiEvent::ConversationChanged {
            conversation_id: switchboard_protocol::ConversationId(1)
        }));
        assert!(carries_payload(&UiEvent::Toast {
            conversation_id: switchboard_protocol::ConversationId(1),
            title: "t".into(),
            body: "b".into(),
            duration_ms: 1,
        }));
    }
}
