//! The Switchboard routing hub: the server that agents' desktop clients
//! connect to.
//!
//! Terminology:
//! - **agent**: a signed-in user (role agent, supervisor or admin) in a team.
//! - **queue** (workstream): where conversations of some channels wait; its
//!   team's members receive its work, with a notification template per
//!   scenario.
//! - **conversation** (work item): a customer thread on one channel.
//! - **offer**: a conversation proposed to one agent until accepted,
//!   rejected or timed out.
//! - **event log**: per-agent, durable, strictly increasing `seq`; live
//!   delivery and replay after a reconnect both read it.
//!
//! [`server::start`] runs a hub; [`hub::Hub`] holds every rule;
//! [`routing`] is the pure agent choice; [`demo`] seeds and simulates.

pub mod allocator;
pub mod auth;
pub mod clock;
pub mod config;
pub mod demo;
pub mod error;
pub mod fit;
pub mod hub;
pub mod links;
pub mod rest;
pub mod routing;
pub mod server;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod ws;

pub use config::HubConfig;
pub use error::{HubError, HubResult};
pub use hub::Hub;
pub use server::{start, start_with_clock, RunningHub};
