//! The headless Switchboard agent engine: what the desktop app (and the
//! `switchboard-agent` CLI) drive. It never depends on tauri.
//!
//! Terminology:
//! - [`engine::Engine`]: a pure state machine. Inputs (hub events, agent
//!   actions, focus, time) become state changes and [`engine::Effect`]s.
//! - **effect**: data describing what the shell must do — show or close an
//!   OS notification, start or stop the ring, chime, badge, tray menu, UI
//!   event, send a command, persist.
//! - [`store::Store`]: the local SQLite cache; a batch of events and the new
//!   last seq are written in one transaction before the hub is acked.
//! - **outbox**: commands persisted before sending and resent with the same
//!   id after a reconnect until the hub answers (exactly once).
//! - [`runtime`]: the imperative shell: connection, heartbeats, reconnect
//!   with backoff, resume, outbox, and an [`runtime::EffectSink`] for the
//!   effects it does not perform itself.

pub mod clock;
pub mod engine;
pub mod error;
pub mod paths;
pub mod runtime;
pub mod session;
pub mod settings;
pub mod store;
pub mod view;
pub mod wall_clock;

pub use engine::{AgentAction, AgentState, Effect, Engine, Input};
pub use error::ClientError;
pub use runtime::{spawn, ClientHandle, ClientOptions, EffectSink, HubEndpoint};
