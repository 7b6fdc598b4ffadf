//! Monitor settings that cannot work are refused with a message saying what is
//! expected.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Duration;

use lb_core::{Backend, Table};
use lb_health::{Error, Monitor};

fn table() -> std::sync::Arc<Table<SocketAddr>> {
    Table::new("t", ["127.0.0.1:1".parse::<SocketAddr>().unwrap()]).unwrap()
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
    let t = Table::new("svc", [Named("inner")]).unwrap();
    let err = Monitor::builder(t).start().unwrap_err();
    assert_eq!(
        err,
        Error::NoAddress {
            table: "svc".into(),
            host: "inner".into()
        }
    );
}
