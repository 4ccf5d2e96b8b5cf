//! Requests that are not valid Protobuf, or too large: tonic answers the first INTERNAL
//! ("failed to decode Protobuf message") and the second OUT_OF_RANGE. Both are the caller's
//! doing, not the server's, so this layer answers INVALID_ARGUMENT (reason `MALFORMED_REQUEST`)
//! and RESOURCE_EXHAUSTED (reason `MESSAGE_TOO_LARGE`, as gRPC's own implementations do)
//! instead. It rewrites only those two answers, recognised by tonic's wording.

use crate::BoxFuture;
use std::task::{Context, Poll};

use tonic::Code;
use tonic::body::Body;

#[derive(Clone, Default)]
pub struct MalformedRequestLayer;

impl<S> tower::Layer<S> for MalformedRequestLayer {
    type Service = MalformedRequest<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MalformedRequest { inner }
    }
}

#[derive(Clone)]
pub struct MalformedRequest<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for MalformedRequest<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            Ok(match caller_error(response.headers()) {
                Some(status) => status.into_http(),
                None => response,
            })
        })
    }
}

/// The status to answer instead, when `headers` carry one of tonic's two codec errors.
fn caller_error(headers: &http::HeaderMap) -> Option<tonic::Status> {
    let status = tonic::Status::from_header_map(headers)?;
    match status.code() {
        Code::Internal
            if status
                .message()
                .starts_with("failed to decode Protobuf message") =>
        {
            let detail = status
                .message()
                .trim_start_matches("failed to decode Protobuf message: ");
            Some(crate::status::with_reason(
                Code::InvalidArgument,
                "MALFORMED_REQUEST",
                format!("the request is not a valid message of this call: {detail}"),
            ))
        }
        Code::OutOfRange
            if status
                .message()
                .contains("decoded message length too large") =>
        {
            Some(crate::status::with_reason(
                Code::ResourceExhausted,
                "MESSAGE_TOO_LARGE",
                "the request is larger than the server accepts (4 MiB)",
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers_of(status: tonic::Status) -> http::HeaderMap {
        status.into_http::<Body>().headers().clone()
    }

    #[test]
    fn codec_errors_become_the_callers() {
        let malformed = caller_error(&headers_of(tonic::Status::internal(
            "failed to decode Protobuf message: invalid wire type",
        )))
        .expect("rewritten");
        assert_eq!(malformed.code(), Code::InvalidArgument);
        assert!(malformed.message().contains("invalid wire type"));
        let large = caller_error(&headers_of(tonic::Status::out_of_range(
            "Error, decoded message length too large: found 5000000 bytes, the limit is: 4194304 bytes",
        )))
        .expect("rewritten");
        assert_eq!(large.code(), Code::ResourceExhausted);
        assert!(caller_error(&headers_of(tonic::Status::internal("a bug"))).is_none());
        assert!(caller_error(&headers_of(tonic::Status::not_found("no"))).is_none());
    }
}
