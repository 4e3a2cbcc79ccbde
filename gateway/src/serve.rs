//! Serving HTTP on the node's own arbiter ([`GatewayConfig::workers`] = 0, the default).
//!
//! actix-web's `HttpServer` runs its connections on worker threads of their own, so every
//! call crosses threads twice in the gateway process: the handler's request wakes the node's
//! arbiter (which owns the links), and the answer wakes the worker again. Here the accept
//! loop and every connection run on the arbiter that called [`Gateway::listen`] (the
//! node's), with actix-http's HTTP/1.1 dispatcher over the same [`App`] as the workers
//! serve, so a call goes from the socket to the link and back without leaving the thread.
//!
//! What `HttpServer` gives that this keeps: the same routes and door, keep-alive, the
//! client's address for host authorisation, TLS (rustls, the handshake bounded by
//! [`HANDSHAKE`]), at most [`MAX_CONNECTIONS`] connections (more are closed at once, with a
//! log line), and a stop that lets requests in progress finish for at most a second.
//!
//! [`GatewayConfig::workers`]: crate::GatewayConfig::workers
//! [`Gateway::listen`]: crate::Gateway::listen

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix_http::HttpService;
use actix_service::{
    map_config, IntoServiceFactory, Service, ServiceFactory, ServiceFactoryExt as _,
};
use actix_web::dev::AppConfig;
use actix_web::{web, App};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::Shared;

/// Connections served at once; past this, new ones are closed as they are accepted
/// (actix-server's default per worker).
pub(crate) const MAX_CONNECTIONS: usize = 25_000;
/// Longest a TLS handshake may take before the connection is closed.
pub(crate) const HANDSHAKE: Duration = Duration::from_secs(10);
/// How long requests in progress may take to finish once the server is stopped.
const GRACE: Duration = Duration::from_secs(1);

/// Stops one server running on the arbiter (see [`serve`]). Cheap to clone; thread-safe.
#[derive(Clone)]
pub(crate) struct StopHandle(Arc<watch::Sender<bool>>);

impl StopHandle {
    /// Stops accepting, gives the connections [`GRACE`] to finish, and returns once the
    /// accept loop has ended.
    pub(crate) async fn stop(&self) {
        let _ = self.0.send(true);
        // The accept loop holds the one receiver it was started with; it is gone once the
        // loop has ended.
        self.0.closed().await;
    }
}

/// Serves the gateway's app on `listener` from the current arbiter (with TLS when
/// `tls` is given) until stopped; returns its stop handle.
pub(crate) async fn serve(
    listener: std::net::TcpListener,
    shared: web::Data<Shared>,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> std::io::Result<StopHandle> {
    let local = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    let (stop, stopped) = watch::channel(false);
    let plain = http1::<TcpStream>(&shared, local, false).await?;
    let secure = match &tls {
        Some(_) => {
            Some(http1::<tokio_rustls::server::TlsStream<TcpStream>>(&shared, local, true).await?)
        }
        None => None,
    };
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let open = Rc::new(Cell::new(0usize));
    actix_rt::spawn(async move {
        let mut refused = 0u64;
        let mut stopping = stopped.clone();
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stopping.wait_for(|stop| *stop) => break,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!("gateway on {local}: cannot accept: {e}");
                    actix_rt::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if open.get() >= MAX_CONNECTIONS {
                refused += 1;
                if refused.is_power_of_two() {
                    tracing::warn!(
                        %peer,
                        refused,
                        "gateway on {local}: {MAX_CONNECTIONS} connections open; closing new ones"
                    );
                }
                continue;
            }
            let _ = stream.set_nodelay(true);
            let connection = Connection {
                open: open.clone(),
                stopped: stopped.clone(),
            };
            match (&acceptor, &secure) {
                (Some(acceptor), Some(secure)) => {
                    let handshake = acceptor.accept(stream);
                    let secure = secure.clone();
                    actix_rt::spawn(connection.run(async move {
                        match tokio::time::timeout(HANDSHAKE, handshake).await {
                            Ok(Ok(stream)) => {
                                let _ = secure.call((stream, Some(peer))).await;
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, "gateway on {local}: TLS handshake: {e}")
                            }
                            Err(_) => tracing::debug!(
                                %peer,
                                "gateway on {local}: TLS handshake not done within {HANDSHAKE:?}"
                            ),
                        }
                    }));
                }
                _ => {
                    let serving = plain.call((stream, Some(peer)));
                    actix_rt::spawn(connection.run(async move {
                        let _ = serving.await;
                    }));
                }
            }
        }
        tracing::debug!("gateway on {local}: no longer accepting");
        // Dropping the receivers (this loop's and, after their grace, the connections')
        // closes the channel.
    });
    Ok(StopHandle(Arc::new(stop)))
}

/// One connection's share of the server: counted while open, dropped [`GRACE`] after stop.
struct Connection {
    open: Rc<Cell<usize>>,
    stopped: watch::Receiver<bool>,
}

impl Connection {
    /// Runs `serving` until it ends, or until [`GRACE`] after the server is stopped.
    async fn run(mut self, serving: impl std::future::Future<Output = ()>) {
        self.open.set(self.open.get() + 1);
        tokio::select! {
            () = serving => {}
            () = async {
                let _ = self.stopped.wait_for(|stop| *stop).await;
                actix_rt::time::sleep(GRACE).await;
            } => {}
        }
        self.open.set(self.open.get() - 1);
    }
}

/// The gateway's app as an HTTP/1.1 service over connections of type `T`.
async fn http1<T>(
    shared: &web::Data<Shared>,
    local: SocketAddr,
    secure: bool,
) -> std::io::Result<
    Rc<
        impl Service<(T, Option<SocketAddr>), Response = (), Error = actix_http::error::DispatchError>,
    >,
>
where
    T: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let shared = shared.clone();
    let app = crate::routes(App::new().app_data(shared))
        .wrap(actix_web::middleware::from_fn(crate::door::check))
        .into_factory()
        .map_err(|e: actix_web::Error| e.as_response_error().error_response());
    let mut builder = HttpService::<T, _, _>::build().local_addr(local);
    if secure {
        builder = builder.secure();
    }
    let factory = builder.h1(map_config(app, |()| AppConfig::default()));
    let service = factory
        .new_service(())
        .await
        .map_err(|()| std::io::Error::other("cannot build the gateway's HTTP service"))?;
    Ok(Rc::new(service))
}
