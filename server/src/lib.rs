//! The Skirmish server as a library, so the binary and the integration tests start it the same way.
//!
//! - [`config`]: the typed configuration, read and validated before anything binds.
//! - [`startup`]: builds and runs the actix-web application.

pub mod config;
pub mod startup;
