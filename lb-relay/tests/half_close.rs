//! Half-close through the relay: a FIN from one side shuts down writing on the other,
//! and the other direction keeps flowing.

mod common;

use common::{bounded, relay, Run};
use lb_core::Host;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// 1 MiB of a pattern that a shifted or truncated copy cannot match.
fn response() -> Vec<u8> {
    (0..1 << 20).map(|i: u32| (i % 251) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_shuts_down_writing_gets_the_whole_response() {
    // The backend reads the request to EOF (the client's FIN, relayed), then answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = listener.local_addr().unwrap();
    let (got, request) = oneshot::channel();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut req = Vec::new();
        s.read_to_end(&mut req).await.unwrap();
        got.send(req).unwrap();
        s.write_all(&response()).await.unwrap();
        s.shutdown().await.unwrap();
    });
    let relay = relay("half-close")
        .forward_to(lb_core::HostTable::new("t", [Host::from(backend)]).unwrap())
        .run();

    let mut client = common::connect(relay.local_addrs()[0]).await.unwrap();
    client.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    client.shutdown().await.unwrap();
    assert_eq!(
        bounded("the request", request).await.unwrap(),
        b"GET / HTTP/1.0\r\n\r\n"
    );
    let mut body = Vec::new();
    bounded("the response", client.read_to_end(&mut body))
        .await
        .unwrap();
    assert_eq!(body.len(), 1 << 20);
    assert!(body == response(), "the response arrived altered");

    common::eventually("the session to end", || relay.stats().active == 0).await;
    let stats = relay.stats();
    assert_eq!(stats.bytes_client_to_server, 18);
    assert_eq!(stats.bytes_server_to_client, 1 << 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_shuts_down_writing_still_receives_the_upload() {
    // The backend greets, shuts down writing at once, then reads the upload to EOF.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = listener.local_addr().unwrap();
    let (got, upload) = oneshot::channel();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        s.write_all(b"220 ready, send your data\n").await.unwrap();
        s.shutdown().await.unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).await.unwrap();
        got.send(all).unwrap();
    });
    let relay = relay("half-close-up")
        .forward_to(lb_core::HostTable::new("t", [Host::from(backend)]).unwrap())
        .run();

    let mut client = common::connect(relay.local_addrs()[0]).await.unwrap();
    // The backend's FIN reaches the client as EOF after the greeting...
    let mut greeting = Vec::new();
    bounded("the greeting and EOF", client.read_to_end(&mut greeting))
        .await
        .unwrap();
    assert_eq!(greeting, b"220 ready, send your data\n");
    // ...and the client can still send: the relay kept that direction open.
    let upload_data = response();
    client.write_all(&upload_data).await.unwrap();
    client.shutdown().await.unwrap();
    let received = bounded("the upload", upload).await.unwrap();
    assert_eq!(received.len(), upload_data.len());
    assert!(received == upload_data, "the upload arrived altered");
}
