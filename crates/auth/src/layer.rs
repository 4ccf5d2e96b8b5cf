use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::Status;
use tonic::body::Body;

use crate::verifier::TokenVerifier;

/// A tower layer for gRPC servers: verifies a bearer token when the call carries one and puts the
/// [`crate::Principal`] in the request extensions. Calls without a token pass through (public RPCs
/// such as Login, health and reflection); handlers that need a caller ask [`crate::principal`].
#[derive(Clone)]
pub struct AuthLayer {
    verifier: TokenVerifier,
}

impl AuthLayer {
    pub fn new(verifier: TokenVerifier) -> Self {
        AuthLayer { verifier }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            verifier: self.verifier.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    verifier: TokenVerifier,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for AuthService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The clone that was polled ready serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        Box::pin(async move {
            let token = match bearer_token(request.headers()) {
                Ok(token) => token,
                Err(message) => return Ok(Status::unauthenticated(message).into_http()),
            };
            if let Some(token) = token {
                match verifier.verify(&token).await {
                    Ok(principal) => {
                        request.extensions_mut().insert(principal);
                    }
                    Err(error) => {
                        tracing::info!(%error, "refused an access token");
                        return Ok(Status::unauthenticated(error.to_string()).into_http());
                    }
                }
            }
            inner.call(request).await
        })
    }
}

/// The bearer token of `authorization`, if any.
fn bearer_token(headers: &http::HeaderMap) -> Result<Option<String>, &'static str> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| "the authorization header is not text")?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or("the authorization header must be `Bearer <token>`")?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err("the authorization header must be `Bearer <token>`");
    }
    Ok(Some(token.trim().to_string()))
}
