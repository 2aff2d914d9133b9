//! The one event channel from the shell to the UI. Every event goes
//! through [`emit`] or [`UiEvents`]; the name lives here only.
//!
//! Most engine events only tell the UI "read the view again". Delivering
//! each one costs a script evaluation in the webview, and a flood of
//! customer messages turned into thousands of them: about 28 MiB of
//! webview memory that never came back (issue 7's footprint benchmark).
//! Those events are folded into one [`ShellEvent::ViewChanged`] per
//! [`FOLD_WINDOW`]: the first goes out at once (no added latency for a
//! single message), the rest of a burst in one more event after it. Each
//! says which conversations changed ([`ViewScope`]), so the UI re-reads
//! the open conversation (all its messages) only when it is one of them.
//! Events that carry something the UI shows by itself (an offer's
//! headline, a toast, a banner, a failed command) still go out one by
//! one, at once; none of them changes a conversation.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use switchboard_client::engine::{UiEvent, ViewScope};
use switchboard_protocol::ConversationId;
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
            | UiEvent::DraftRestored { .. }
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
        let (view_changes, delivery) = ViewChangeFolder::new(FOLD_WINDOW, move |c: ViewChanges| {
            emit(
                &emitter,
                ShellEvent::ViewChanged {
                    all: c.all,
                    conversations: c.conversations.into_iter().collect(),
                },
            )
        });
        tauri::async_runtime::spawn(delivery);
        UiEvents { app, view_changes }
    }

    /// Delivers an engine event: at once if the UI needs its payload,
    /// otherwise folded into a view change.
    pub fn engine(&self, event: UiEvent) {
        let scope = event.scope();
        if carries_payload(&event) {
            emit(&self.app, ShellEvent::Ui { event });
            // The UI re-reads the list for these; a conversation they
            // changed (none today) would follow folded.
            if scope != ViewScope::List {
                self.view_changes.changed(scope);
            }
        } else {
            self.view_changes.changed(scope);
        }
    }
}

/// What changed since the UI last heard: everything, or the list and
/// these conversations.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ViewChanges {
    /// Every conversation may have changed.
    pub all: bool,
    /// These conversations changed (empty with `all`: it covers them).
    pub conversations: BTreeSet<ConversationId>,
}

impl ViewChanges {
    fn add(&mut self, scope: ViewScope) {
        match scope {
            ViewScope::Everything => {
                self.all = true;
                self.conversations.clear();
            }
            ViewScope::List => {}
            ViewScope::Conversation(id) if !self.all => {
                self.conversations.insert(id);
            }
            ViewScope::Conversation(_) => {}
        }
    }
}

/// Folds "the view changed" signals: the first is delivered at once, then
/// at most one more per window for everything that came during it, with
/// the union of their scopes. Idle, its task sleeps on a [`Notify`] (no
/// timer runs).
#[derive(Clone)]
pub struct ViewChangeFolder {
    signal: Arc<Notify>,
    /// `None`: nothing since the last delivery.
    pending: Arc<Mutex<Option<ViewChanges>>>,
}

impl ViewChangeFolder {
    /// The folder, and the task (to spawn) that calls `deliver`.
    pub fn new(
        window: Duration,
        deliver: impl Fn(ViewChanges) + Send + 'static,
    ) -> (Self, impl std::future::Future<Output = ()> + Send + 'static) {
        let signal = Arc::new(Notify::new());
        let pending = Arc::new(Mutex::new(None));
        let (waiting, taken) = (signal.clone(), pending.clone());
        let delivery = async move {
            loop {
                // A change during the window left a permit: the loop
                // delivers once more for all of them.
                waiting.notified().await;
                let changes = taken.lock().unwrap_or_else(PoisonError::into_inner).take();
                // A permit left by a change this delivery already carried.
                let Some(changes) = changes else { continue };
                deliver(changes);
                tokio::time::sleep(window).await;
            }
        };
        (ViewChangeFolder { signal, pending }, delivery)
    }

    /// Notes a change.
    pub fn changed(&self, scope: ViewScope) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert_with(ViewChanges::default)
            .add(scope);
        self.signal.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    fn changes(all: bool, ids: &[i64]) -> ViewChanges {
        ViewChanges {
            all,
            conversations: ids.iter().map(|i| ConversationId(*i)).collect(),
        }
    }

    #[tokio::test]
    async fn a_burst_is_delivered_at_once_and_then_once_more_with_every_scope() {
        tokio::time::pause();
        let seen = Arc::new(Mutex::new(Vec::<ViewChanges>::new()));
        let s = seen.clone();
        let (folder, delivery) = ViewChangeFolder::new(Duration::from_millis(50), move |c| {
            s.lock().unwrap().push(c)
        });
        tokio::spawn(delivery);
        let delivered = || seen.lock().unwrap().clone();
        settle().await;
        assert!(delivered().is_empty(), "nothing before a change");
        folder.changed(ViewScope::Conversation(ConversationId(1)));
        settle().await;
        assert_eq!(
            delivered(),
            [changes(false, &[1])],
            "the first goes out at once"
        );
        for i in 0..1000 {
            folder.changed(ViewScope::Conversation(ConversationId(2 + i % 3)));
            folder.changed(ViewScope::List);
        }
        settle().await;
        assert_eq!(delivered().len(), 1, "the burst waits for the window");
        tokio::time::advance(Duration::from_millis(51)).await;
        settle().await;
        assert_eq!(
            delivered()[1..],
            [changes(false, &[2, 3, 4])],
            "one more for the whole burst, naming each conversation once"
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        settle().await;
        assert_eq!(delivered().len(), 2, "idle: nothing more");
        folder.changed(ViewScope::List);
        settle().await;
        assert_eq!(
            delivered()[2..],
            [changes(false, &[])],
            "the list alone, at once"
        );
        folder.changed(ViewScope::Conversation(ConversationId(5)));
        folder.changed(ViewScope::Everything);
        folder.changed(ViewScope::Conversation(ConversationId(6)));
        tokio::time::advance(Duration::from_millis(51)).await;
        settle().await;
        assert_eq!(
            delivered()[3..],
            [changes(true, &[])],
            "everything covers every conversation"
        );
    }

    #[test]
    fn only_events_with_something_to_show_bypass_the_folding() {
        let id = ConversationId(1);
        assert!(!carries_payload(&UiEvent::SettingsChanged));
        assert!(!carries_payload(&UiEvent::ConversationChanged {
            conversation_id: id
        }));
        assert!(carries_payload(&UiEvent::Toast {
            conversation_id: id,
            title: "t".into(),
            body: "b".into(),
            duration_ms: 1,
        }));
    }
}
