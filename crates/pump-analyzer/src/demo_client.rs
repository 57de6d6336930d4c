//! `pump-analyzer demo`: starts a demo stream on a running server through its API
//! (`POST /live/demo`), says where to watch it, and stops its feed on Ctrl-C or after a set time.
//! A plain HTTP/1.1 client on hyper, which the server already links; HTTPS servers are watched
//! from the dashboard's "Watch a demo" button instead.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{Value, json};
use tokio::net::TcpStream;

/// What `demo` was asked to do.
pub struct DemoArgs {
    /// The server's base URL, `http://HOST:PORT`.
    pub url: String,
    pub rate: u32,
    /// Stop after this long; `None`: on Ctrl-C.
    pub seconds: Option<u64>,
}

/// One request to the server; the answer's status and JSON body.
async fn call(base: &str, method: &str, path: &str, body: Option<Value>) -> Result<(u16, Value), String> {
    let authority = base
        .strip_prefix("http://")
        .ok_or_else(|| {
            format!("{base}: only http:// URLs are supported here (open the dashboard for an HTTPS server)")
        })?
        .trim_end_matches('/');
    let stream = TcpStream::connect(authority).await.map_err(|e| format!("cannot reach {base}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .map_err(|e| format!("cannot talk to {base}: {e}"))?;
    tokio::spawn(connection);
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::ACCEPT, "application/json")
        .body(Full::new(Bytes::from(payload)))
        .map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(|e| format!("{method} {path}: {e}"))?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.map_err(|e| format!("{method} {path}: {e}"))?.to_bytes();
    Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

fn refusal(status: u16, answer: &Value) -> String {
    let message = answer["error"]["message"].as_str().or_else(|| answer["message"].as_str()).unwrap_or("no message");
    format!("the server answered {status}: {message}")
}

/// Runs the demo until Ctrl-C (or `seconds`), printing where to watch it.
pub async fn run(args: &DemoArgs) -> Result<(), String> {
    let base = args.url.trim_end_matches('/');
    let (status, demo) = call(base, "POST", "/live/demo", Some(json!({ "rate": args.rate }))).await?;
    if status != 201 {
        return Err(refusal(status, &demo));
    }
    let id = demo["stream_id"].as_str().ok_or("the server answered without a stream id")?.to_string();
    println!("Demo stream {id}: {} rounds/s on client seed {}", args.rate, demo["client_seed"].as_str().unwrap_or("?"));
    println!("Watch it:  {base}/streams/{id}");
    match args.seconds {
        Some(seconds) => tokio::time::sleep(Duration::from_secs(seconds)).await,
        None => {
            println!("Ctrl-C stops the feed (the stream stays; reveal its seed from the stream page).");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    let (status, stopped) = call(base, "DELETE", &format!("/live/demo/{id}"), None).await?;
    if status != 200 {
        return Err(refusal(status, &stopped));
    }
    println!("Stopped at nonce {}.", stopped["last_nonce"]);
    Ok(())
}
