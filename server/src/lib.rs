//! The Skirmish server as a library, so the binary and the integration tests start it the same way.
//!
//! - [`config`]: the typed configuration, read and validated before anything binds.
//! - [`startup`]: builds the application (database, arbiters, restored rooms, HTTP) and shuts it down.
//! - [`domain`]: values parsed at the edge: `RoomId`, room settings, tickets and resume tokens.
//! - [`http`]: the matchmaking API, the WebSocket upgrade, health, metrics and OpenAPI.
//! - [`transport`]: bytes on the socket: a connection's bounded outbound queue and its response body.
//! - [`room`]: the room actor (one per room, drift-free tick), its messages, the registry.
//! - [`session`]: the session actor (one per connection), which speaks to a room by its messages.
//! - [`modes`]: the game modes, and the wiring of a game's rooms to their sessions.
//! - [`persistence_actor`], [`persistence_link`]: batched writes of snapshots, rooms and results.
//! - [`webhooks`]: signed `match.finished` / `room.closed` events, sent at least once from the outbox.
//! - [`cluster`]: cluster mode: the lease, taking over rooms, the drain, calls between nodes.
//! - [`metrics`]: the Prometheus metric names and recorders.
//! - [`healthcheck`]: `skirmish healthcheck`, the container probe (`GET /healthz` over std TCP).
//! - [`error_chain`]: log an error with its whole cause chain.

pub mod clock;
pub mod cluster;
pub mod config;
pub mod domain;
pub mod error_chain;
pub mod healthcheck;
pub mod http;
pub mod metrics;
pub mod modes;
pub mod persistence_actor;
pub mod persistence_link;
pub mod room;
pub mod session;
pub mod startup;
pub mod telemetry;
pub mod transport;
pub mod webhooks;
