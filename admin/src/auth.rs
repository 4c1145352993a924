//! The bearer token that guards every `POST` when `[admin] token` is set.
//!
//! Reads are open (they are what dashboards and scrapers poll); anything that changes the
//! engine needs `Authorization: Bearer <token>`. The comparison takes the same time
//! whatever the first differing byte is, so the token cannot be guessed byte by byte.

use crate::request::Request;

/// Why a request is not authorised (HTTP 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Unauthorized {
    #[error("this endpoint needs an `Authorization: Bearer <token>` header")]
    Missing,
    #[error("wrong token")]
    Wrong,
}

/// Checks `request` against the configured token; without one every request passes.
pub(crate) fn authorize(token: Option<&str>, request: &Request) -> Result<(), Unauthorized> {
    let Some(token) = token else {
        return Ok(());
    };
    let header = request
        .header("Authorization")
        .ok_or(Unauthorized::Missing)?;
    let (scheme, given) = header.trim().split_once(' ').ok_or(Unauthorized::Missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Unauthorized::Missing);
    }
    if constant_time_eq(given.trim().as_bytes(), token.as_bytes()) {
        Ok(())
    } else {
        Err(Unauthorized::Wrong)
    }
}

/// Whether `a == b`, looking at every byte of the longer one whatever they hold.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= std::hint::black_box(x ^ y);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Method;

    fn post(auth: Option<&str>) -> Request {
        let r = Request::new(Method::Post, "/checkpoint");
        match auth {
            Some(a) => r.with_header("authorization", a),
            None => r,
        }
    }

    #[test]
    fn equal_only_when_every_byte_and_the_length_match() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cret", b"s3creT"));
        assert!(!constant_time_eq(b"s3cret", b"s3cret\0"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn bearer_token_is_checked_only_when_configured() {
        assert_eq!(authorize(None, &post(None)), Ok(()));
        assert_eq!(
            authorize(Some("t"), &post(None)),
            Err(Unauthorized::Missing)
        );
        assert_eq!(
            authorize(Some("t"), &post(Some("Basic t"))),
            Err(Unauthorized::Missing)
        );
        assert_eq!(
            authorize(Some("t"), &post(Some("Bearer u"))),
            Err(Unauthorized::Wrong)
        );
        assert_eq!(authorize(Some("t"), &post(Some("Bearer t"))), Ok(()));
        assert_eq!(authorize(Some("t"), &post(Some("bearer  t "))), Ok(()));
    }
}
