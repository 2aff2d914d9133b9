//! The agent WebSocket endpoint (`GET /ws`): hello, version negotiation,
//! auth, resume (replay or snapshot), event streaming, commands, acks and
//! heartbeats. Bad input gets an error frame or a close code; it never takes
//! the hub down.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use switchboard_protocol::{
    close_code, decode_client_frame, encode, AgentId, ClientFrame, CommandOutcome, DecodeError,
    ErrorBody, ErrorCode, Hello, Seq, ServerFrame, Welcome, MAX_FRAME_BYTES, SUPPORTED_VERSIONS,
};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::HubError;
use crate::fit;
use crate::hub::{Hub, Session};
use crate::server::AppState;

/// Events sent per database read while catching up.
const BATCH: i64 = 256;

/// Upgrades the request to a WebSocket with the protocol's size limits.
pub async fn upgrade(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| serve(state, socket))
}

enum Incoming {
    Text(String),
    Binary,
    TooBig,
    Closed,
    Noise,
}

async fn recv(socket: &mut WebSocket) -> Incoming {
    match socket.recv().await {
        None => Incoming::Closed,
        Some(Ok(WsMessage::Text(t))) => Incoming::Text(t.to_string()),
        Some(Ok(WsMessage::Binary(_))) => Incoming::Binary,
        Some(Ok(WsMessage::Close(_))) => Incoming::Closed,
        Some(Ok(_)) => Incoming::Noise,
        Some(Err(e)) => {
            let too_big = e
                .into_inner()
                .downcast_ref::<tungstenite::Error>()
                .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)));
            if too_big {
                Incoming::TooBig
            } else {
                Incoming::Closed
            }
        }
    }
}

/// A link-level failure that ends the connection.
struct Hangup;

async fn send(socket: &mut WebSocket, frame: &ServerFrame) -> Result<(), Hangup> {
    let text = within_limit(frame);
    socket
        .send(WsMessage::Text(text.into()))
        .await
        .map_err(|_| Hangup)
}

/// The encoded frame, trimmed to [`MAX_FRAME_BYTES`] where it embeds
/// history. The hub trims when it logs an event, but the log may hold
/// assignments written before it did, and the client drops a larger frame.
fn within_limit(frame: &ServerFrame) -> String {
    let text = encode(frame);
    if text.len() <= MAX_FRAME_BYTES {
        return text;
    }
    let trimmed = match frame {
        ServerFrame::Event(ev) => {
            let mut ev = ev.clone();
            fit::fit_event(&mut ev.event);
            encode(&ServerFrame::Event(ev))
        }
        ServerFrame::Snapshot { seq, snapshot } => {
            let mut snapshot = snapshot.clone();
            fit::fit_snapshot(&mut snapshot);
            encode(&ServerFrame::Snapshot {
                seq: *seq,
                snapshot,
            })
        }
        _ => text,
    };
    if trimmed.len() > MAX_FRAME_BYTES {
        // Sent anyway: nothing here can shrink it, and the client logs it.
        tracing::error!(bytes = trimmed.len(), "frame exceeds the protocol limit");
    }
    trimmed
}

async fn close(mut socket: WebSocket, code: u16, reason: &str) {
    let _ = socket
        .send(WsMessage::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
    // Give the peer a moment to read the close frame before the drop.
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while let Some(Ok(_)) = socket.recv().await {}
    })
    .await;
}

async fn refuse(mut socket: WebSocket, error: ErrorBody, code: u16) {
    let reason = error.message.clone();
    let _ = send(&mut socket, &ServerFrame::Error(error)).await;
    close(socket, code, &reason).await;
}

async fn serve(state: AppState, mut socket: WebSocket) {
    let hub = state.hub.clone();
    let hello_timeout = Duration::from_millis(hub.config().protocol.hello_timeout_ms);
    let hello = match tokio::time::timeout(hello_timeout, recv(&mut socket)).await {
        Err(_) => {
            return refuse(
                socket,
                ErrorBody::new(ErrorCode::HelloRequired, "no hello in time"),
                close_code::HELLO_REQUIRED,
            )
            .await
        }
        Ok(Incoming::Text(t)) => match decode_client_frame(&t) {
            Ok(ClientFrame::Hello(h)) => h,
            Ok(_) => {
                return refuse(
                    socket,
                    ErrorBody::new(ErrorCode::HelloRequired, "the first frame must be hello"),
                    close_code::HELLO_REQUIRED,
                )
                .await
            }
            Err(e) => {
                return refuse(
                    socket,
                    ErrorBody::new(ErrorCode::InvalidFrame, e.to_string()),
                    close_code::HELLO_REQUIRED,
                )
                .await
            }
        },
        Ok(Incoming::TooBig) => {
            return close(socket, close_code::MESSAGE_TOO_BIG, "frame too large").await
        }
        Ok(Incoming::Binary) => {
            return refuse(
                socket,
                ErrorBody::new(
                    ErrorCode::InvalidFrame,
                    "binary frames are not part of protocol v1",
                ),
                close_code::HELLO_REQUIRED,
            )
            .await
        }
        Ok(_) => return,
    };
    let Some(version) = SUPPORTED_VERSIONS
        .iter()
        .copied()
        .filter(|v| hello.versions.contains(v))
        .max()
    else {
        return refuse(
            socket,
            ErrorBody::new(
                ErrorCode::UnsupportedVersion,
                format!("no common protocol version; this hub speaks {SUPPORTED_VERSIONS:?}"),
            ),
            close_code::UNSUPPORTED_VERSION,
        )
        .await;
    };
    let session = match hub.authenticate(&hello.token).await {
        Ok(s) => s,
        // Only a refused token is 4001 (a client signs its agent out on
        // it); the hub failing is 1011, to be tried again.
        Err(e) if e.code() == ErrorCode::Unauthorized => {
            return refuse(socket, e.body(), close_code::UNAUTHORIZED).await
        }
        Err(e) => {
            tracing::error!(error = %e, "hello failed");
            return refuse(socket, e.body(), close_code::INTERNAL_ERROR).await;
        }
    };
    let agent = session.profile.id;
    let (signals, _) = hub.links.connect(agent);
    tracing::info!(agent = %agent, client = %hello.client.name, "agent connected");
    let mut link = Link {
        hub: hub.clone(),
        agent,
        session,
        sent: Seq(0),
        newest_seq: signals.newest_seq,
        revocations: signals.revocations,
        shutdown: state.shutdown.clone(),
    };
    let outcome = link.run(&mut socket, version, &hello).await;
    if hub.links.disconnect(agent) {
        // The grace timers that hand the agent's customers on. A passing
        // failure (a busy or full disk) must not leave them with an agent
        // who is gone until it comes back: tried again, on its own task.
        hub.retry_detached(agent, "disconnect bookkeeping", move |hub| async move {
            hub.agent_disconnected(agent).await
        });
    }
    tracing::info!(agent = %agent, ?outcome, "agent disconnected");
    match outcome {
        Ok(End::Closed) | Err(_) => {}
        Ok(End::Close(code, reason)) => close(socket, code, reason).await,
    }
}

/// Why a session ended.
#[derive(Debug)]
enum End {
    /// The peer went away.
    Closed,
    /// We close with this code.
    Close(u16, &'static str),
}

/// Tells the client its token was revoked; the link is then closed with
/// [`close_code::TOKEN_REVOKED`].
async fn token_revoked(socket: &mut WebSocket) -> End {
    let _ = send(
        socket,
        &ServerFrame::Error(ErrorBody::new(ErrorCode::Unauthorized, "token revoked")),
    )
    .await;
    End::Close(close_code::TOKEN_REVOKED, "token revoked")
}

struct Link {
    hub: Arc<Hub>,
    agent: AgentId,
    session: Session,
    sent: Seq,
    newest_seq: watch::Receiver<u64>,
    revocations: watch::Receiver<u64>,
    shutdown: watch::Receiver<bool>,
}

impl std::fmt::Debug for Hangup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("hangup")
    }
}

impl Link {
    async fn run(
        &mut self,
        socket: &mut WebSocket,
        version: u16,
        hello: &Hello,
    ) -> Result<End, Hangup> {
        let hub = self.hub.clone();
        // A check that could not read the token: checked again on each
        // beat until it can. Failing it closed would sign the agent out
        // for good over a passing database error.
        let mut recheck = false;
        // A logout between the token's check and this link's registration
        // signalled no one (the link subscribed to revocations after it):
        // checked once more now, or a revoked link would be given work.
        if self.revoked(&hub, &mut recheck).await {
            send(
                socket,
                &ServerFrame::Error(ErrorBody::new(ErrorCode::Unauthorized, "token revoked")),
            )
            .await?;
            return Ok(End::Close(close_code::TOKEN_REVOKED, "token revoked"));
        }
        let (mode, start, snapshot) = match hub
            .resume(self.agent, hello.resume.map(|c| c.last_seq))
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(agent = %self.agent, error = %e, "resume failed");
                send(socket, &ServerFrame::Error(e.body())).await?;
                return Ok(End::Close(close_code::GOING_AWAY, "resume failed"));
            }
        };
        let last_seq = hub.last_seq(self.agent).await.unwrap_or(start);
        let interval_ms = hub.config().protocol.heartbeat_interval_ms;
        send(
            socket,
            &ServerFrame::Welcome(Welcome {
                version,
                agent: self.session.profile.clone(),
                heartbeat_interval_ms: interval_ms,
                max_frame_bytes: MAX_FRAME_BYTES as u64,
                resume: mode,
                last_seq,
                server_time: hub.now(),
            }),
        )
        .await?;
        self.sent = start;
        if let Some(snapshot) = snapshot {
            send(
                socket,
                &ServerFrame::Snapshot {
                    seq: start,
                    snapshot,
                },
            )
            .await?;
        }
        // After the snapshot, so work routed to the agent now arrives as
        // live events (which the client notifies), not inside the state. On
        // every link, not only the agent's first: it is idempotent, and a
        // first link that dies before its welcome (the client gave up on it
        // and opened another) would otherwise leave it undone.
        if let Err(e) = hub.agent_connected(self.agent).await {
            tracing::error!(agent = %self.agent, error = %e, "connect bookkeeping failed");
        }
        self.drain(socket).await?;

        let heartbeat = Duration::from_millis(interval_ms);
        let mut ticker = tokio::time::interval(heartbeat);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        loop {
            tokio::select! {
                _ = self.shutdown.changed() => {
                    return Ok(End::Close(close_code::GOING_AWAY, "hub shutting down"));
                }
                _ = self.revocations.changed() => {
                    if self.revoked(&hub, &mut recheck).await {
                        return Ok(token_revoked(socket).await);
                    }
                }
                _ = self.newest_seq.changed() => {
                    self.drain(socket).await?;
                }
                _ = ticker.tick() => {
                    if last_heard.elapsed() > heartbeat * 3 {
                        return Ok(End::Close(close_code::HEARTBEAT_TIMEOUT, "no heartbeat"));
                    }
                    if recheck && self.revoked(&hub, &mut recheck).await {
                        return Ok(token_revoked(socket).await);
                    }
                    // The link is the token's use: renewing it here keeps a
                    // signed-in agent from being cut off mid-shift.
                    if let Err(e) = hub.renew_session(&mut self.session).await {
                        tracing::warn!(agent = %self.agent, error = %e, "token renewal failed; trying again next beat");
                    }
                    if self.session.expires_at <= hub.now() {
                        let _ = send(socket, &ServerFrame::Error(ErrorBody::new(ErrorCode::Unauthorized, "token expired"))).await;
                        return Ok(End::Close(close_code::UNAUTHORIZED, "token expired"));
                    }
                }
                incoming = recv(socket) => {
                    last_heard = Instant::now();
                    match incoming {
                        Incoming::Text(text) => {
                            // A revocation signalled while this frame
                            // waited is seen first (`select!` picks among
                            // ready branches at random): a command sent as
                            // the agent signed out must not run on the
                            // revoked token.
                            if self.revocations.has_changed().unwrap_or(false) {
                                self.revocations.borrow_and_update();
                                if self.revoked(&hub, &mut recheck).await {
                                    return Ok(token_revoked(socket).await);
                                }
                            }
                            self.handle_text(socket, &text).await?;
                        }
                        Incoming::Binary => {
                            send(socket, &ServerFrame::Error(ErrorBody::new(ErrorCode::InvalidFrame, "binary frames are not part of protocol v1"))).await?;
                        }
                        Incoming::TooBig => {
                            return Ok(End::Close(close_code::MESSAGE_TOO_BIG, "frame too large"));
                        }
                        Incoming::Noise => {}
                        Incoming::Closed => return Ok(End::Closed),
                    }
                }
            }
        }
    }

    /// Whether this link's token is revoked or expired. A failed read is
    /// not a revocation: it leaves `recheck` set for the next beat.
    async fn revoked(&self, hub: &Hub, recheck: &mut bool) -> bool {
        match hub.session_valid(&self.session).await {
            Ok(valid) => {
                *recheck = false;
                !valid
            }
            Err(e) => {
                tracing::warn!(agent = %self.agent, error = %e, "could not check the token; keeping the link, checking again next beat");
                *recheck = true;
                false
            }
        }
    }

    /// Sends every committed event not yet sent on this connection.
    async fn drain(&mut self, socket: &mut WebSocket) -> Result<(), Hangup> {
        self.newest_seq.borrow_and_update();
        loop {
            let batch = match self.hub.events_after(self.agent, self.sent, BATCH).await {
                Ok(b) => b,
                Err(e) => {
                    // Leave the events in the log; the next wake retries.
                    tracing::error!(agent = %self.agent, error = %e, "reading events failed");
                    return Ok(());
                }
            };
            if batch.is_empty() {
                return Ok(());
            }
            if batch[0].seq.0 > self.sent.0 + 1 {
                // Events after ours were pruned before they were read
                // (retention ran between the resume and this read: work
                // routed at connect can append the event that prunes): a
                // snapshot in their place, then on from it. Sent on, the
                // gap would lose events with nothing to say so.
                tracing::warn!(agent = %self.agent, sent = self.sent.0, next = batch[0].seq.0, "events pruned before they were sent; sending a snapshot");
                match self.hub.resume(self.agent, Some(self.sent)).await {
                    Ok((_, seq, Some(snapshot))) => {
                        send(socket, &ServerFrame::Snapshot { seq, snapshot }).await?;
                        self.sent = seq;
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(agent = %self.agent, error = %e, "snapshot after a gap failed");
                        return Ok(());
                    }
                }
            }
            for ev in batch {
                self.sent = ev.seq;
                send(socket, &ServerFrame::Event(ev)).await?;
            }
        }
    }

    async fn handle_text(&mut self, socket: &mut WebSocket, text: &str) -> Result<(), Hangup> {
        let frame = match decode_client_frame(text) {
            Ok(f) => f,
            Err(e) => {
                let code = match e {
                    DecodeError::TooLarge(_) => ErrorCode::TooLarge,
                    DecodeError::Invalid(_) => ErrorCode::InvalidFrame,
                };
                tracing::debug!(agent = %self.agent, error = %e, "invalid frame");
                return send(
                    socket,
                    &ServerFrame::Error(ErrorBody::new(code, e.to_string())),
                )
                .await;
            }
        };
        match frame {
            ClientFrame::Ping { nonce } => send(socket, &ServerFrame::Pong { nonce }).await,
            ClientFrame::Ack { seq } => {
                if let Err(e) = self.hub.ack(self.agent, seq).await {
                    tracing::warn!(agent = %self.agent, error = %e, "ack not stored");
                }
                Ok(())
            }
            ClientFrame::Command(cmd) => {
                tracing::debug!(agent = %self.agent, kind = cmd.command.kind(), "command");
                let outcome = match self.hub.execute(self.agent, &cmd.id, cmd.command).await {
                    Ok(reply) => CommandOutcome::Ok { reply },
                    Err(e) => {
                        log_refusal(self.agent, &e);
                        CommandOutcome::Error(e.body())
                    }
                };
                // The events a command caused go out before its result, so
                // the client's state is current when it learns the outcome.
                self.drain(socket).await?;
                send(
                    socket,
                    &ServerFrame::CommandResult {
                        id: cmd.id,
                        outcome,
                    },
                )
                .await
            }
            ClientFrame::Hello(_) => {
                send(
                    socket,
                    &ServerFrame::Error(ErrorBody::new(
                        ErrorCode::InvalidFrame,
                        "hello already received",
                    )),
                )
                .await
            }
            ClientFrame::Unknown => {
                tracing::info!(agent = %self.agent, "ignoring unknown frame kind");
                Ok(())
            }
        }
    }
}

fn log_refusal(agent: AgentId, e: &HubError) {
    match e {
        HubError::Refused { code, message } => {
            tracing::debug!(agent = %agent, ?code, %message, "command refused")
        }
        other => tracing::error!(agent = %agent, error = %other, "command failed"),
    }
}
