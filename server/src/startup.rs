//! Builds the application the same way for the binary and for the tests.

use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer, web};

use crate::config::Config;

/// A bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    pub fn build(config: &Config) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(config.listen)?;
        let port = listener.local_addr()?.port();
        let server = HttpServer::new(|| App::new().route("/healthz", web::get().to(healthz)))
            .listen(listener)?
            .run();
        Ok(Self { port, server })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}
