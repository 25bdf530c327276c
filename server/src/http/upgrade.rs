//! WebSocket upgrades, where the socket leaves actix-http for our transport.
//!
//! actix-http hands a request that asks to upgrade over with its connection (instead of calling the
//! app). We run it through a second instance of the same app, so routing, middleware (request id,
//! the request span, metrics, the concurrency limit) and the `ws.upgrade` handler with all its
//! refusals are exactly those of any other request; the handler, if it admits the client, leaves
//! an [`Admitted`] in the request's [`HandOver`] slot and answers 101. We write the app's answer on
//! the connection and then, only if the slot is filled, take the socket out of the reactor and hand
//! it, with whatever the client sent after its request, to the room's port. Any other answer (a
//! refusal, or another route asked to upgrade) is written with `Connection: close` and the
//! connection ends.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use actix_codec::Framed;
use actix_http::body::{BodySize, MessageBody};
use actix_http::h1::{Codec, Message};
use actix_http::{ConnectionType, HttpMessage, Request, Response};
use actix_rt::net::TcpStream;
use actix_service::{Service, ServiceFactory, fn_factory, fn_service};
use actix_web::dev::{AppConfig, ServiceResponse};
use futures_util::SinkExt;
use game_core::PlayerId;
use tracing::{Span, warn};

use crate::room::registry::RoomEntry;
use crate::transport::Socket;

/// What the `ws.upgrade` handler admitted: the room and the player the socket is for.
pub struct Admitted {
    pub entry: Arc<RoomEntry>,
    pub player: PlayerId,
    /// The upgrade request's span: the session's span follows from it.
    pub span: Span,
}

/// The slot an upgrade request carries in its extensions, for the handler to fill.
#[derive(Clone, Default)]
pub struct HandOver(Rc<RefCell<Option<Admitted>>>);

impl HandOver {
    pub fn admit(&self, admitted: Admitted) {
        *self.0.borrow_mut() = Some(admitted);
    }

    fn take(&self) -> Option<Admitted> {
        self.0.borrow_mut().take()
    }
}

/// The upgrade service of one worker: `make_app` builds the same app the worker serves HTTP with.
pub fn service<F, S, B>(
    make_app: F,
) -> impl ServiceFactory<
    (Request, Framed<TcpStream, Codec>),
    Config = (),
    Response = (),
    Error = actix_web::Error,
    InitError = (),
>
where
    F: Fn() -> S + Clone + 'static,
    S: ServiceFactory<
            Request,
            Config = AppConfig,
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    fn_factory(move || {
        let factory = make_app();
        async move {
            let app = Rc::new(factory.new_service(AppConfig::default()).await?);
            Ok(fn_service(move |(request, framed)| {
                upgrade(app.clone(), request, framed)
            }))
        }
    })
}

async fn upgrade<A, B>(
    app: Rc<A>,
    request: Request,
    mut framed: Framed<TcpStream, Codec>,
) -> Result<(), actix_web::Error>
where
    A: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    let slot = HandOver::default();
    request.extensions_mut().insert(slot.clone());
    let response: Response<_> = match app.call(request).await {
        Ok(response) => response.map_into_boxed_body().into(),
        Err(error) => error.error_response().into(),
    };
    let admitted = slot.take().filter(|_| response.status().as_u16() == 101);
    let (mut head, body) = response.into_parts();
    if admitted.is_none() {
        head.head_mut().set_connection_type(ConnectionType::Close);
    }
    let size = body.size();
    framed.send(Message::Item((head, size))).await?;
    if size != BodySize::None {
        let bytes = actix_web::body::to_bytes(body)
            .await
            .map_err(|e| actix_web::error::ErrorInternalServerError(e.to_string()))?;
        if !bytes.is_empty() {
            framed.send(Message::Chunk(Some(bytes))).await?;
        }
        framed.send(Message::Chunk(None)).await?;
    }
    let Some(admitted) = admitted else {
        return Ok(());
    };
    let parts = framed.into_parts();
    let stream = parts.io.into_std()?;
    if let Err(error) = stream.set_nonblocking(true) {
        warn!(%error, "upgraded socket could not be made non-blocking");
        return Err(error.into());
    }
    let socket = Socket {
        stream,
        early: parts.read_buf.freeze(),
    };
    admitted
        .span
        .in_scope(|| admitted.entry.port.connect(admitted.player, socket));
    Ok(())
}
