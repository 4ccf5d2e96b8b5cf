//! Page tokens for list RPCs (AIP-158): `page_size` bounded, `page_token` opaque.
//!
//! Lists are ordered by id, newest first (ids are UUID v7, so by creation time); a token holds
//! the last id of the previous page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tonic::Status;
use uuid::Uuid;

use crate::status::invalid_argument;

/// The default page size.
pub const DEFAULT_PAGE_SIZE: u64 = 50;
/// The largest page size; larger requests are lowered to it (AIP-158).
pub const MAX_PAGE_SIZE: u64 = 200;

/// A parsed page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// How many items to return.
    pub size: u64,
    /// Return only items with an id below this one.
    pub before: Option<Uuid>,
}

impl PageRequest {
    /// Parses `page_size` and `page_token`.
    pub fn parse(page_size: i32, page_token: &str) -> Result<PageRequest, Status> {
        let size = match page_size {
            size if size < 0 => return Err(invalid_argument("page_size", "must not be negative")),
            0 => DEFAULT_PAGE_SIZE,
            size => (size as u64).min(MAX_PAGE_SIZE),
        };
        let before = if page_token.is_empty() {
            None
        } else {
            let bytes = URL_SAFE_NO_PAD.decode(page_token).map_err(|_| {
                invalid_argument("page_token", "is not a token this service issued")
            })?;
            Some(Uuid::from_slice(&bytes).map_err(|_| {
                invalid_argument("page_token", "is not a token this service issued")
            })?)
        };
        Ok(PageRequest { size, before })
    }

    /// How many rows to fetch: one more than the page, to know whether another page follows.
    pub fn fetch_limit(&self) -> u64 {
        self.size + 1
    }

    /// Cuts `items` (fetched with [`Self::fetch_limit`]) to the page and returns the next token.
    pub fn finish<T>(&self, items: &mut Vec<T>, id_of: impl Fn(&T) -> Uuid) -> String {
        if items.len() as u64 > self.size {
            items.truncate(self.size as usize);
            items
                .last()
                .map(|last| URL_SAFE_NO_PAD.encode(id_of(last).as_bytes()))
                .unwrap_or_default()
        } else {
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let page = PageRequest::parse(2, "").expect("first page");
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let mut items = ids.clone();
        let token = page.finish(&mut items, |id| *id);
        assert_eq!(items.len(), 2);
        let next = PageRequest::parse(2, &token).expect("next page");
        assert_eq!(next.before, Some(ids[1]));
    }

    #[test]
    fn bad_input_is_named() {
        let error = PageRequest::parse(-1, "").expect_err("negative size");
        assert_eq!(error.code(), tonic::Code::InvalidArgument);
        assert!(error.message().contains("page_size"));
        let error = PageRequest::parse(10, "garbage!").expect_err("bad token");
        assert!(error.message().contains("page_token"));
    }

    #[test]
    fn sizes_are_bounded() {
        assert_eq!(
            PageRequest::parse(0, "").map(|p| p.size).ok(),
            Some(DEFAULT_PAGE_SIZE)
        );
        assert_eq!(
            PageRequest::parse(10_000, "").map(|p| p.size).ok(),
            Some(MAX_PAGE_SIZE)
        );
    }
}
