//! The `ServiceDesk Plus` REST API v3 client: one shared `reqwest` client (rustls, timeouts), `input_data`
//! in the query (GET) or a form body (POST/PUT), the vnd Accept header, on-prem `authtoken` or Cloud
//! Zoho OAuth, a request budget that is never exceeded, and errors that say whether to retry.

mod client;
pub mod dto;
pub mod error;
mod oauth;
mod pacer;

pub use client::{RequestPage, SdpClient};
pub use error::SdpError;
pub use pacer::Pacer;
