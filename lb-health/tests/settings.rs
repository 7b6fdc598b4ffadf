//! Monitor settings that cannot work are refused with a message saying what is
//! expected.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Duration;

use lb_core::{Backend, HostTable};
use lb_health::{Error, Monitor};

fn table() -> std::sync::Arc<HostTable<SocketAddr>> {
    HostTable::new("t", ["127.0.0.1:1".parse::<SocketAddr>().unwrap()]).unwrap()
}

fn setting(e: Error) -> &'static str {
    match e {
        Error::InvalidSetting { setting, .. } => setting,
        other => panic!("expected InvalidSetting, got {other}"),
    }
}

#[tokio::test]
async fn invalid_settings() {
    let ms = Duration::from_millis;
    let err = |b: lb_health::MonitorBuilder<SocketAddr>| setting(b.start().unwrap_err());
    assert_eq!(err(Monitor::builder(table()).interval(ms(0))), "interval");
    assert_eq!(
        err(Monitor::builder(table()).interval(ms(100)).timeout(ms(100))),
        "timeout"
    );
    assert_eq!(err(Monitor::builder(table()).timeout(ms(0))), "timeout");
    assert_eq!(
        err(Monitor::builder(table()).fast_interval(ms(200))),
        "fast interval"
    );
    assert_eq!(err(Monitor::builder(table()).rise(0)), "rise");
    let msg = Monitor::builder(table())
        .rise(0)
        .start()
        .unwrap_err()
        .to_string();
    assert_eq!(msg, "invalid setting `rise`: at least 1 success");
}

#[test]
fn outside_a_runtime() {
    assert_eq!(
        Monitor::builder(table()).start().unwrap_err(),
        Error::NoRuntime
    );
}

/// A backend without an address: nothing to check.
struct Named(&'static str);
impl Backend for Named {
    fn name(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.0)
    }
}

#[tokio::test]
async fn hosts_need_an_address() {
    let t = HostTable::new("svc", [Named("inner")]).unwrap();
    let err = Monitor::builder(t).start().unwrap_err();
    assert_eq!(
        err,
        Error::NoAddress {
            table: "svc".into(),
            host: "inner".into()
        }
    );
}

/// Durations too long for the clock are deadlines far away, never a panic in a check.
#[tokio::test]
async fn the_longest_durations_do_not_overflow_the_clock() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let probe = lb_health::Probe::new(addr, Duration::MAX);
    assert!(probe.deadline() > tokio::time::Instant::now() + Duration::from_secs(86_400));
    let table = HostTable::new("t", [addr]).unwrap();
    let builder = Monitor::builder(table)
        .interval(Duration::MAX)
        .timeout(Duration::MAX - Duration::from_secs(1));
    let mut events = builder.subscribe();
    let _monitor = builder.start().unwrap();
    let up = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let event = events.recv().await.unwrap();
            if event.new == lb_core::Health::Up {
                return event;
            }
        }
    })
    .await
    .expect("the first check brings the host up");
    assert_eq!(up.reason, "tcp ok");
}
