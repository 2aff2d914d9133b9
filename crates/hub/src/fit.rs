//! Keeps every frame the hub sends within [`MAX_FRAME_BYTES`].
//!
//! Assignment events and snapshots embed recent history, and a customer
//! message may be 64 KiB (six times that once JSON escapes control
//! characters). A client drops any larger frame, so an agent would own a
//! conversation it never sees and could never resync. Embedded history is a
//! convenience (the full thread is on `GET /conversations/{id}/messages`,
//! pageable by message id), so it is trimmed from the oldest message by
//! encoded size; the newest messages that fit are always kept.

use serde::Serialize;
use switchboard_protocol::{
    AgentEvent, AgentSnapshot, EventFrame, Message, Millis, Seq, ServerFrame, MAX_FRAME_BYTES,
};

/// Most history bytes (encoded) embedded for one conversation, so the event
/// log does not store near-megabyte rows. Still room for the largest message
/// (64 KiB of control characters encodes to about 384 KiB).
pub const HISTORY_BUDGET_BYTES: usize = 512 * 1024;

/// The encoded size of a value, as `encode` writes it. A value that cannot
/// be encoded counts as too big for any budget.
fn encoded_len<T: Serialize>(value: &T) -> usize {
    serde_json::to_string(value).map_or(usize::MAX, |s| s.len())
}

/// The newest messages of `messages` (oldest first) whose encoded size,
/// with separators, is at most `budget`, and the bytes they take.
fn newest_within(mut messages: Vec<Message>, budget: usize) -> (Vec<Message>, usize) {
    let mut used = 0usize;
    let mut keep = 0;
    for m in messages.iter().rev() {
        // One more byte for the comma between array items (an over-count
        // of one for the first item, which is harmless).
        let size = encoded_len(m).saturating_add(1);
        match used.checked_add(size) {
            Some(total) if total <= budget => {
                used = total;
                keep += 1;
            }
            // Stop at the first that does not fit: the kept history stays a
            // contiguous run ending at the newest message.
            _ => break,
        }
    }
    let kept = messages.split_off(messages.len() - keep);
    (kept, used)
}

/// Trims the history of a `ConversationAssigned` event so that its frame
/// fits; other events are left alone (their text fields are capped at
/// ingress and by command validation).
pub fn fit_event(event: &mut AgentEvent) {
    let AgentEvent::ConversationAssigned {
        conversation,
        messages,
        has_earlier,
        ..
    } = event
    else {
        return;
    };
    let conv = conversation.id;
    let all = std::mem::take(messages);
    let total = all.len();
    // Measured with the flag's longest form (`false`); set below.
    let said = has_earlier.replace(false);
    // The largest seq and timestamp, so the real frame is never longer.
    let skeleton = encoded_len(&ServerFrame::Event(EventFrame {
        seq: Seq(u64::MAX),
        at: Millis(i64::MIN),
        event: event.clone(),
    }));
    let budget = MAX_FRAME_BYTES
        .saturating_sub(skeleton)
        .min(HISTORY_BUDGET_BYTES);
    let (kept, _) = newest_within(all, budget);
    if kept.len() < total {
        tracing::info!(
            conversation = %conv,
            kept = kept.len(),
            dropped = total - kept.len(),
            "assignment history trimmed to fit a frame"
        );
    }
    if let AgentEvent::ConversationAssigned {
        messages,
        has_earlier,
        ..
    } = event
    {
        // What is trimmed is reachable with `GET …/messages?before=`.
        *has_earlier = if kept.len() < total { Some(true) } else { said };
        *messages = kept;
    }
}

/// Trims a snapshot so that its frame fits: the histories share what the
/// conversations and offers leave, each keeping its newest messages. If
/// even those do not fit, the newest offers are left out (they stay
/// pending and time out as usual).
pub fn fit_snapshot(snapshot: &mut AgentSnapshot) {
    let histories: Vec<Vec<Message>> = snapshot
        .conversations
        .iter_mut()
        .map(|c| std::mem::take(&mut c.messages))
        .collect();
    let frame_len = |s: &AgentSnapshot| {
        encoded_len(&ServerFrame::Snapshot {
            seq: Seq(u64::MAX),
            snapshot: s.clone(),
        })
    };
    let mut skeleton = frame_len(snapshot);
    while skeleton > MAX_FRAME_BYTES {
        let Some(offer) = snapshot.offers.pop() else {
            tracing::error!(
                agent = %snapshot.agent.id,
                bytes = skeleton,
                "snapshot exceeds the frame limit even without history or offers"
            );
            break;
        };
        tracing::warn!(
            agent = %snapshot.agent.id,
            offer = %offer.id,
            "offer left out of a snapshot to fit the frame limit"
        );
        skeleton = frame_len(snapshot);
    }
    let mut left = MAX_FRAME_BYTES.saturating_sub(skeleton);
    let count = histories.len();
    for (i, (state, history)) in snapshot.conversations.iter_mut().zip(histories).enumerate() {
        // An even share of what is left, so what a short history leaves
        // unused goes to the conversations after it.
        let share = (left / (count - i)).min(HISTORY_BUDGET_BYTES);
        let total = history.len();
        let (kept, used) = newest_within(history, share);
        if kept.len() < total {
            tracing::info!(
                conversation = %state.conversation.id,
                kept = kept.len(),
                dropped = total - kept.len(),
                "snapshot history trimmed to fit a frame"
            );
        }
        left = left.saturating_sub(used);
        if kept.len() < total {
            // The rest is reachable with `GET …/messages?before=`.
            state.has_earlier = Some(true);
        }
        state.messages = kept;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_protocol::{Author, ConversationId, MessageId};

    fn msg(id: i64, text: &str) -> Message {
        Message {
            id: MessageId(id),
            conversation_id: ConversationId(1),
            author: Author::Customer,
            text: text.into(),
            sent_at: Millis(0),
            command_id: None,
        }
    }

    #[test]
    fn keeps_the_newest_contiguous_run_that_fits() {
        let big = "\u{1}".repeat(1000);
        let ms = vec![msg(1, "a"), msg(2, &big), msg(3, "b"), msg(4, "c")];
        let one = encoded_len(&msg(3, "b")) + 1;
        let (kept, used) = newest_within(ms.clone(), 2 * one);
        assert_eq!(kept.iter().map(|m| m.id.0).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(used, 2 * one);
        // The big one blocks older ones even if they would fit.
        let (kept, _) = newest_within(ms, 3 * one + 10);
        assert_eq!(kept.iter().map(|m| m.id.0).collect::<Vec<_>>(), [3, 4]);
        let (kept, used) = newest_within(vec![msg(1, &big)], 10);
        assert!(kept.is_empty());
        assert_eq!(used, 0);
    }
}
