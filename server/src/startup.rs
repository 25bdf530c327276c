//! Builds the application the same way for the binary and for the tests.
//!
//! Order: configuration (already validated) → metrics → database (connect, migrate, secret) →
//! webhook sender (if configured) → room arbiters → restore the rooms that were open → bind → serve. [`Application::shutdown`] is the
//! graceful stop: stop accepting, close every room (1001 to clients, final snapshots), flush
//! persistence, then let the connections finish their close handshakes.

use std::sync::Arc;
use std::time::Duration;

use actix_http::{HttpService, KeepAlive};
use actix_rt::Arbiter;
use actix_service::{IntoServiceFactory, map_config};
use actix_web::dev::AppConfig;
use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, middleware, web};
use tracing::{Instrument, error, info, warn};

use crate::cluster::Cluster;
use crate::config::Config;
use crate::domain::tickets::{Signer, UsedNonces};
use crate::domain::{RoomId, RoomSettings};
use crate::http::{self, AppState};
use crate::modes::{Modes, Restored};
use crate::room::messages::CloseKind;
use crate::room::registry::{Ownership, RoomRegistry};
use crate::room::{RoomEnv, RoomTimings};
use crate::session::SessionSettings;

/// How long shutdown waits for webhook attempts under way to be recorded.
const WEBHOOK_STOP_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database: {0}")]
    Storage(#[from] persistence::StorageError),
    #[error("webhooks: {0}")]
    Webhooks(#[from] crate::webhooks::StartError),
    #[error("binding {address}: {source}")]
    Bind {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// A bound, running-once-awaited server.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    arbiters: Vec<Arbiter>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Application {
    pub async fn build(mut config: Config) -> Result<Self, StartupError> {
        let listener =
            std::net::TcpListener::bind(config.listen).map_err(|source| StartupError::Bind {
                address: config.listen,
                source,
            })?;
        let local = listener.local_addr().map_err(|source| StartupError::Bind {
            address: config.listen,
            source,
        })?;
        let port = local.port();
        // Tickets carry the address clients can reach, with the port actually bound (`:0` in tests).
        config
            .public_url
            .get_or_insert_with(|| format!("ws://{local}"));
        let metrics = crate::metrics::install();
        let storage = connect_storage(&config).await?;
        let secret = match &config.secret {
            Some(secret) => secret.as_bytes().to_vec(),
            None => {
                storage
                    .secret_or_insert(&rand::random::<[u8; 32]>())
                    .await?
            }
        };
        let api_key = config.api_key.clone().unwrap_or_else(|| {
            let key = format!("{:032x}", rand::random::<u128>());
            warn!(api_key = %key, "no api_key configured: generated one for this run");
            key
        });
        let signer = Arc::new(Signer::new(&secret));
        let cluster = if config.cluster {
            Some(
                Cluster::join(
                    storage.clone(),
                    config.node_id(),
                    config.ws_base(),
                    config.node_ttl(),
                )
                .await?,
            )
        } else {
            None
        };
        let registry = Arc::new(RoomRegistry::default());
        // Dedicated room arbiters only when asked for; by default rooms share the HTTP workers.
        let arbiters: Vec<Arbiter> = (0..config.room_threads).map(|_| Arbiter::new()).collect();
        let webhooks = match crate::webhooks::WebhookSettings::from_config(&config) {
            Some(settings) => Some(crate::webhooks::Webhooks::start(storage.clone(), settings)?),
            None => None,
        };
        let store = crate::persistence_link::start(
            storage.clone(),
            &config,
            webhooks.as_ref().map(|w| w.waker()),
            cluster.as_ref().map(|c| c.node_id.clone()),
        );
        let env = Arc::new(RoomEnv::new(
            registry.clone(),
            signer.clone(),
            RoomTimings {
                resume_grace: config.resume_grace(),
                empty_room_timeout: Duration::from_millis(config.empty_room_timeout_ms),
                snapshot_every_ticks: config.snapshot_every_ticks,
            },
            Some(store.clone() as Arc<dyn crate::room::RoomStore>),
            cluster.as_ref().map(|c| c.clock.clone()),
            arbiters.iter().map(|a| a.handle()).collect(),
        ));
        let sessions = Arc::new(SessionSettings::from_config(&config));
        let modes = Arc::new(Modes::standard(sessions.clone()));
        // Restored rooms' start spans are children of this span. In a cluster, rooms without a
        // live owner are claimed by the keeper instead, on whichever node gets them.
        if cluster.is_none() {
            restore_rooms(&storage, &modes, &env, &store)
                .instrument(tracing::info_span!("rooms.restore"))
                .await?;
        }

        let config = Arc::new(config);
        let state = web::Data::new(AppState {
            config: config.clone(),
            api_key,
            registry,
            modes,
            env,
            signer,
            nonces: Arc::new(UsedNonces::default()),
            storage,
            sessions,
            metrics,
            matchmaking: tokio::sync::Mutex::new(()),
            store,
            webhooks,
            cluster,
        });

        let app_state = state.clone();
        let room_env = state.env.clone();
        let send_buffer = config.socket_send_buffer;
        let in_flight = web::Data::new(http::limit::InFlight::new(
            config.http_max_concurrent_requests,
        ));
        let make_app = move || {
            App::new()
                .app_data(app_state.clone())
                .app_data(in_flight.clone())
                // Inside the request metrics, so refused requests are counted as 503s there too.
                .wrap(middleware::from_fn(http::limit::limit_concurrency))
                .wrap(middleware::from_fn(http::track_requests))
                // Outermost: the request span and id cover everything else, metrics included.
                .wrap(middleware::from_fn(http::request_id::trace_requests))
                .configure(http::configure)
                .into_factory()
        };
        // actix-web's `HttpServer` with one addition: WebSocket upgrades come with their connection
        // (`http::upgrade`), so that the socket can leave the HTTP stack for the rooms' ticks.
        let server = actix_server::Server::build()
            .workers(config.workers())
            .backlog(4096)
            .disable_signals()
            .shutdown_timeout(3)
            .listen("skirmish-http", listener, move || {
                // Runs once on each worker, on its own arbiter.
                room_env.register_worker(Arbiter::current());
                HttpService::build()
                    .keep_alive(KeepAlive::default())
                    .client_request_timeout(Duration::from_secs(5))
                    .client_disconnect_timeout(Duration::from_secs(1))
                    .h1_allow_half_closed(true)
                    .local_addr(local)
                    // One small frame per tick each way: never hold a state back waiting for an ACK (Nagle).
                    .tcp_nodelay(true)
                    .on_connect_ext(move |tcp: &actix_web::rt::net::TcpStream, _| {
                        if let Some(bytes) = send_buffer
                            && let Err(error) =
                                socket2::SockRef::from(tcp).set_send_buffer_size(bytes)
                        {
                            warn!(%error, "could not set the socket send buffer");
                        }
                    })
                    .upgrade(http::upgrade::service(make_app.clone()))
                    // Nothing we serve reads the configured host name (URLs come from `public_url`).
                    .finish(map_config(make_app(), |_| AppConfig::default()))
                    .tcp()
            })
            .map_err(|source| StartupError::Bind {
                address: config.listen,
                source,
            })?
            .run();

        spawn_sweeper(state.clone());
        if let Some(cluster) = &state.cluster {
            cluster.spawn_keeper(state.room_host());
        }
        info!(port, rooms = state.registry.len(), "skirmish listening");
        Ok(Self {
            port,
            server,
            state,
            arbiters,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle that can stop the server gracefully from anywhere (signals, tests).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            server: self.server.handle(),
            state: self.state.clone(),
        }
    }

    /// Serves until [`ShutdownHandle::shutdown`] has run.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        for arbiter in self.arbiters {
            arbiter.stop();
        }
        result
    }
}

/// Stops the server gracefully.
#[derive(Clone)]
pub struct ShutdownHandle {
    server: ServerHandle,
    state: web::Data<AppState>,
}

impl std::fmt::Debug for ShutdownHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShutdownHandle")
    }
}

impl ShutdownHandle {
    /// Resolves once everything the rooms handed to persistence so far is committed (or with why
    /// not); the server keeps running. For tests and operational tools.
    pub async fn flush_persistence(&self) -> Result<(), crate::persistence_actor::FlushError> {
        self.state.store.flush().await
    }

    /// 1 stop accepting; 2 close every room (clients get 1001, final snapshots go to persistence);
    /// 3 flush persistence and wait for the commit; 4 stop the webhook sender (undelivered events
    /// wait in the outbox), then close the database pool; 5 let connections finish their close
    /// handshake.
    pub async fn shutdown(&self) {
        // The rooms' close spans are children of this span. It ends before the server stops, so
        // that it is among the spans exported when the process exits.
        self.shutdown_steps()
            .instrument(tracing::info_span!("shutdown"))
            .await;
        self.server.stop(true).await;
        info!("stopped");
    }

    async fn shutdown_steps(&self) {
        info!("shutting down");
        // A cluster node hands its rooms over while it still answers HTTP (locate, forwards).
        if let Some(cluster) = &self.state.cluster {
            cluster
                .drain(&self.state.room_host())
                .instrument(tracing::info_span!("drain"))
                .await;
        }
        self.server.pause().await;
        let closing: Vec<_> = self
            .state
            .registry
            .entries()
            .into_iter()
            .filter(|entry| entry.shared.is_open())
            .map(|entry| entry.port.close(CloseKind::Shutdown))
            .collect();
        futures_util::future::join_all(closing).await;
        if let Err(error) = self.state.store.flush().await {
            error!(error = %crate::error_chain::ErrorChain(&error), "final flush failed: the latest state may be lost");
        }
        // Undelivered events stay in the outbox and go out after the next start.
        if let Some(webhooks) = &self.state.webhooks {
            webhooks.stop(WEBHOOK_STOP_WAIT).await;
        }
        // Nothing writes after the final flush: return the connections (PostgreSQL backends,
        // SQLite's WAL checkpoint) instead of leaving them to die with the process.
        if let Err(error) = self.state.storage.clone().close().await {
            warn!(%error, "closing the database pool failed");
        }
        // Give the close frames a moment to go out before connections are torn down.
        actix_rt::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn connect_storage(config: &Config) -> Result<persistence::Storage, StartupError> {
    let pool = persistence::PoolOptions {
        max_connections: config.database_max_connections,
        min_connections: config.database_min_connections,
        acquire_timeout: Duration::from_millis(config.database_acquire_timeout_ms),
        statement_timeout: Duration::from_millis(config.database_statement_timeout_ms),
    };
    let storage = persistence::Storage::connect(&config.database_url, &pool).await?;
    if config.cluster {
        // Nodes starting together on an empty database must not migrate at once.
        persistence::Storage::migrate_serialized(&config.database_url).await?;
    } else {
        storage.migrate().await?;
    }
    info!(database = %persistence::redact_url(&config.database_url), "database ready");
    Ok(storage)
}

/// Brings back every room that was open, from its latest snapshot; a room that cannot be restored
/// is closed in storage and logged, never silently dropped.
async fn restore_rooms(
    storage: &persistence::Storage,
    modes: &Modes,
    env: &Arc<RoomEnv>,
    store: &crate::persistence_link::PersistenceLink,
) -> Result<(), StartupError> {
    for record in storage.open_rooms().await? {
        // The stored fence: a database that once ran a cluster has rooms with fences above 0.
        let ownership = Ownership {
            incarnation: 0,
            fence: record.owner.fence,
        };
        let restored = restore_room(storage, modes, env, &record, ownership).await;
        match restored {
            Ok(snapshot) => info!(room_id = %record.room_id, tick = snapshot.tick, "room restored"),
            Err(reason) => {
                warn!(room_id = %record.room_id, %reason, "room could not be restored; closing it");
                store.close_unrestorable(record);
            }
        }
    }
    Ok(())
}

/// The snapshot a room was restored from.
#[derive(Debug, Clone, Copy)]
pub struct RestoredFrom {
    pub tick: u64,
    pub created_at: time::OffsetDateTime,
    pub tick_rate: u32,
}

/// Starts the room of `record` from its newest snapshot, owned as `ownership`; the reason if it
/// cannot be (unknown mode, unreadable settings or snapshot, no snapshot).
pub(crate) async fn restore_room(
    storage: &persistence::Storage,
    modes: &Modes,
    env: &Arc<RoomEnv>,
    record: &persistence::RoomRecord,
    ownership: Ownership,
) -> Result<RestoredFrom, String> {
    let id = RoomId::parse(&record.room_id).map_err(|e| e.to_string())?;
    let mode = modes
        .get(&record.mode)
        .ok_or_else(|| format!("unknown mode {}", record.mode))?;
    let settings: RoomSettings = serde_json::from_str(&record.config).map_err(|e| e.to_string())?;
    let snapshot = storage
        .latest_snapshot(&record.room_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no snapshot")?;
    let restored = Restored {
        id,
        settings,
        created_at: record.created_at,
        ownership,
        snapshot: &snapshot.state,
    };
    mode.restore(env, restored).map_err(|e| e.to_string())?;
    Ok(RestoredFrom {
        tick: snapshot.tick,
        created_at: snapshot.created_at,
        tick_rate: settings.tick_rate,
    })
}

/// Once a second: fold the histograms' samples, forget used ticket nonces that have expired and closed rooms past retention.
fn spawn_sweeper(state: web::Data<AppState>) {
    actix_rt::spawn(async move {
        let mut interval = actix_rt::time::interval(Duration::from_secs(1));
        loop {
            interval.tick().await;
            // Folds the histograms' recorded samples into their buckets. Without it they pile up
            // until /metrics is scraped: two per room per tick, without bound if nobody scrapes.
            state.metrics.run_upkeep();
            state.nonces.purge_expired(crate::clock::now_ms());
            let retention = Duration::from_millis(state.config.closed_room_retention_ms);
            state
                .registry
                .prune_closed(time::OffsetDateTime::now_utc() - retention);
        }
    });
}
