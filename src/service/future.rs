//! [`ResponseFuture`]: drives the chosen service and holds its lease until done.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use lb_core::{Backend, Lease};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::{BalanceError, BoxError};

pin_project! {
    /// The response of [`Balance`](super::Balance): waits for the chosen service to be
    /// ready, calls it, and holds the host's [`Lease`] until the response is complete,
    /// so the request counts as an active state for its whole life.
    pub struct ResponseFuture<S: Service<Req>, Req, B: Backend> {
        #[pin]
        state: State<S, Req>,
        lease: Option<Lease<B>>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S: Service<Req>, Req> {
        Ready { service: S, request: Option<Req> },
        Called { #[pin] future: S::Future },
        Failed { error: Option<BalanceError> },
    }
}

impl<S: Service<Req>, Req, B: Backend> ResponseFuture<S, Req, B> {
    pub(super) fn new(service: S, request: Req, lease: Lease<B>) -> Self {
        ResponseFuture {
            state: State::Ready {
                service,
                request: Some(request),
            },
            lease: Some(lease),
        }
    }

    pub(super) fn failed(error: BalanceError) -> Self {
        ResponseFuture {
            state: State::Failed { error: Some(error) },
            lease: None,
        }
    }
}

impl<S, Req, B> Future for ResponseFuture<S, Req, B>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    B: Backend,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Ready { service, request } => {
                    if let Err(e) = ready!(service.poll_ready(cx)) {
                        this.lease.take();
                        return Poll::Ready(Err(e.into()));
                    }
                    let Some(request) = request.take() else {
                        return Poll::Ready(Err(BalanceError::PolledAfterCompletion.into()));
                    };
                    let future = service.call(request);
                    this.state.set(State::Called { future });
                }
                StateProj::Called { future } => {
                    let out = ready!(future.poll(cx)).map_err(Into::into);
                    // The request is done: its state ends now, not when the future is dropped.
                    this.lease.take();
                    return Poll::Ready(out);
                }
                StateProj::Failed { error } => {
                    let error = error.take().unwrap_or(BalanceError::PolledAfterCompletion);
                    return Poll::Ready(Err(error.into()));
                }
            }
        }
    }
}
