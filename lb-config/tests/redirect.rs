//! `redirect` blocks: forced to layer 4 they run as relays and say why; on Linux a
//! missing `nft` makes them fall back with lb-redirect's typed error; as root with
//! `nft`, they run in the kernel inside a network namespace (see
//! `test-support/netns.rs`), reload by difference and leave no table behind.

mod common;

use std::time::Duration;

use common::{free_port, plan, BOUND};
use lb_config::{Fallback, Layer, RedirectMode, StartOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_layer4_runs_a_redirect_as_a_relay_and_says_why() {
    let backend = TcpListener::bind("127.0.0.1:0").await.expect("backend");
    let bport = backend.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = backend.accept().await {
            tokio::spawn(async move {
                let _ = s.write_all(b"backend\n").await;
            });
        }
    });
    let port = free_port();
    let text = format!(
        "table <t> {{ 127.0.0.1 }}\n\
         redirect \"www\" {{\n listen on 127.0.0.1 port {port}\n forward to <t> port {bport} mode source-hash\n sticky-address\n}}\n"
    );
    let mut running = plan("redirect.conf", &text)
        .start_with(StartOptions::redirects(RedirectMode::Layer4))
        .expect("the relay starts");
    assert_eq!(running.options().redirects, RedirectMode::Layer4);
    let block = &running.relays[0];
    assert!(
        matches!(
            block.layer(),
            Layer::Relay {
                fallback: Some(Fallback::Chosen)
            }
        ),
        "{:?}",
        block.layer()
    );
    assert_eq!(block.handles.len(), 1);
    let addr = block.handles[0].local_addrs()[0];
    let mut s = TcpStream::connect(addr)
        .await
        .expect("connect through the relay");
    let mut got = vec![0u8; 8];
    tokio::time::timeout(BOUND, s.read_exact(&mut got))
        .await
        .expect("in time")
        .expect("the backend's greeting through the relay");
    assert_eq!(got, b"backend\n");
    running.shutdown(Duration::from_secs(1)).await;
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_nft_a_redirect_falls_back_with_the_reason_or_fails_when_layer3_is_required() {
    let text = format!(
        "table <t> {{ 127.0.0.1 }}\n\
         redirect \"www\" {{\n listen on 127.0.0.1 port {}\n forward to <t> mode roundrobin\n}}\n",
        free_port()
    );
    let options = |redirects| StartOptions {
        redirects,
        nft: "/nonexistent/nft".into(),
    };
    let mut running = plan("redirect.conf", &text)
        .start_with(options(RedirectMode::Auto))
        .expect("falls back to a relay");
    match running.relays[0].layer() {
        Layer::Relay {
            fallback: Some(Fallback::Nftables(lb_redirect::Error::NftMissing { path })),
        } => assert_eq!(path, std::path::Path::new("/nonexistent/nft")),
        other => panic!("expected a fallback for a missing nft, got {other:?}"),
    }
    assert_eq!(running.relays[0].handles.len(), 1);
    running.shutdown(Duration::from_secs(1)).await;

    match plan("redirect.conf", &text).start_with(options(RedirectMode::Layer3)) {
        Err(lb_config::StartError::Redirect {
            relay,
            source: Fallback::Nftables(lb_redirect::Error::NftMissing { .. }),
        }) => assert_eq!(relay, "www"),
        Err(e) => panic!("expected a redirect error, got {e}"),
        Ok(_) => panic!("layer 3 is required and nft is missing: the start must fail"),
    }
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modes_without_a_kernel_form_fall_back() {
    let text = format!(
        "table <t> {{ 127.0.0.1 }}\n\
         redirect \"www\" {{\n listen on 127.0.0.1 port {}\n forward to <t> mode p2c\n}}\n",
        free_port()
    );
    let mut running = plan("redirect.conf", &text)
        .start()
        .expect("falls back to a relay");
    match running.relays[0].layer() {
        Layer::Relay {
            fallback: Some(Fallback::Unsupported(why)),
        } => assert!(why.contains("p2c"), "{why}"),
        other => panic!("expected an unsupported-mode fallback, got {other:?}"),
    }
    running.shutdown(Duration::from_secs(1)).await;
}

#[cfg(target_os = "linux")]
#[path = "../../test-support/netns.rs"]
mod netns;

#[cfg(target_os = "linux")]
#[path = "redirect/kernel.rs"]
mod kernel;
