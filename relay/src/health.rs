//! The relay's own health endpoint, for the ECS container health check: `GET /healthz` answers 200
//! only while the relay is consuming (the app answered its health URL, the task's queue was found),
//! 503 before (waiting for the app or the queue) and while draining. The body is a small JSON status.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::task::AbortOnDropHandle;

use crate::deliver::{http_client, Phase, Status};

/// The health path.
pub const PATH: &str = "/healthz";

fn answer(status: &Status, path: &str) -> Response<Full<Bytes>> {
    if path != PATH {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Full::new(Bytes::from_static(b"not found\n")))
            .expect("a valid response");
    }
    let phase = status.phase();
    let code = if phase == Phase::Consuming {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "phase": phase.as_str(),
        "delivered": status.delivered.load(Ordering::Relaxed),
        "failed": status.failed.load(Ordering::Relaxed),
        "backpressured": status.backpressured.load(Ordering::Relaxed),
        "unreachable": status.unreachable.load(Ordering::Relaxed),
    });
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(format!("{body}\n"))))
        .expect("a valid response")
}

/// Binds `addr` and serves the health endpoint until the handle is dropped.
pub async fn serve(addr: SocketAddr, status: Arc<Status>) -> std::io::Result<(SocketAddr, AbortOnDropHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let status = status.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let response = answer(&status, req.uri().path());
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((local, AbortOnDropHandle::new(task)))
}

/// `--check-health`: true when `http://<addr>/healthz` answers 200 within 3 s.
pub async fn check(addr: SocketAddr) -> bool {
    let host = match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => format!("127.0.0.1:{}", a.port()),
        SocketAddr::V6(a) if a.ip().is_unspecified() => format!("[::1]:{}", a.port()),
        a => a.to_string(),
    };
    let Ok(uri) = format!("http://{host}{PATH}").parse::<hyper::Uri>() else {
        return false;
    };
    let http = http_client(Duration::from_secs(2));
    let request = Request::get(uri)
        .body(Full::new(Bytes::new()))
        .expect("a valid request");
    match tokio::time::timeout(Duration::from_secs(3), http.request(request)).await {
        Ok(Ok(r)) => {
            let ok = r.status() == StatusCode::OK;
            if let Ok(body) = r.into_body().collect().await {
                print!("{}", String::from_utf8_lossy(&body.to_bytes()));
            }
            ok
        }
        _ => false,
    }
}
