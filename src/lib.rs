//! deskbridge: an on-prem appliance between the Cloudeka Service Portal and `ManageEngine`
//! `ServiceDesk` Plus. See ARCHITECTURE.md for the module map.

pub mod actors;
pub mod app;
pub mod auth;
pub mod backup;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod metrics;
pub mod sdp;
pub mod service;
pub mod settings;
pub mod store;
pub mod sync;
pub mod tickets;
pub mod web;
