//! Query strings and path segments: percent-decoding and the bounds every value must keep.
//!
//! Everything is checked before a backend is asked: unknown or repeated parameters,
//! encodings that are not UTF-8, values longer than a key may be, and a `limit` that is
//! not an integer in `1..=10000` are each a 400 with a sentence naming the parameter.

/// A request target longer than this is refused.
pub(crate) const MAX_TARGET_BYTES: usize = 8 * 1024;
/// A decoded value (or path segment) longer than this is refused; it is the engine's
/// longest key, so every key can still be asked for.
pub(crate) const MAX_VALUE_BYTES: usize = 1024;
/// The largest `limit`.
pub(crate) const MAX_LIMIT: usize = 10_000;
/// The `limit` when none is given.
pub(crate) const DEFAULT_LIMIT: usize = 100;

/// Why a query or path value is refused (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BadInput {
    #[error("the request target is longer than {MAX_TARGET_BYTES} bytes")]
    TargetTooLong,
    #[error("unknown query parameter {name:?} (this route takes {allowed})")]
    UnknownParameter { name: String, allowed: String },
    #[error("query parameter {name:?} is given more than once")]
    Repeated { name: String },
    #[error("{what} is not valid percent-encoded UTF-8")]
    Encoding { what: String },
    #[error("{what} is longer than {MAX_VALUE_BYTES} bytes")]
    TooLong { what: String },
    #[error("query parameter {name:?} must not be empty")]
    Empty { name: String },
    #[error("limit must be an integer from 1 to {MAX_LIMIT} (got {value:?})")]
    Limit { value: String },
    #[error("{needs:?} needs the query parameter {missing:?}")]
    Missing {
        needs: &'static str,
        missing: &'static str,
    },
}

/// The decoded parameters of one query string.
#[derive(Debug, Default)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses `raw` (the part after `?`), accepting only the parameter names in `allowed`.
    pub(crate) fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, BadInput> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let name = decode(name, true, "a query parameter name")?;
            if !allowed.contains(&name.as_str()) {
                let allowed = if allowed.is_empty() {
                    "no parameters".to_owned()
                } else {
                    allowed.join(", ")
                };
                return Err(BadInput::UnknownParameter { name, allowed });
            }
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(BadInput::Repeated { name });
            }
            let value = decode(value, true, &format!("query parameter {name:?}"))?;
            pairs.push((name, value));
        }
        Ok(Self { pairs })
    }

    /// The value of a parameter, if given.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of a parameter that must not be empty when given.
    pub(crate) fn non_empty(&self, name: &str) -> Result<Option<&str>, BadInput> {
        match self.get(name) {
            Some("") => Err(BadInput::Empty {
                name: name.to_owned(),
            }),
            other => Ok(other),
        }
    }

    /// `limit`, if given: an integer in `1..=MAX_LIMIT`.
    pub(crate) fn limit(&self) -> Result<Option<usize>, BadInput> {
        let Some(value) = self.get("limit") else {
            return Ok(None);
        };
        // Digits only: `+5`, ` 5` and `5.0` are refused rather than guessed at.
        match value.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) && value.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(Some(n))
            }
            _ => Err(BadInput::Limit {
                value: value.chars().take(32).collect(),
            }),
        }
    }
}

/// Percent-decodes `text` (and `+` as a space when `plus_is_space`, as in query strings),
/// refusing bad escapes, non-UTF-8 results and results over [`MAX_VALUE_BYTES`].
pub(crate) fn decode(text: &str, plus_is_space: bool, what: &str) -> Result<String, BadInput> {
    let bad = || BadInput::Encoding {
        what: what.to_owned(),
    };
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        rest = tail;
        match b {
            b'%' => {
                let (hi, lo) = match rest {
                    [hi, lo, ..] => (hex(*hi).ok_or_else(bad)?, hex(*lo).ok_or_else(bad)?),
                    _ => return Err(bad()),
                };
                bytes.push(hi << 4 | lo);
                rest = rest.get(2..).unwrap_or_default();
            }
            b'+' if plus_is_space => bytes.push(b' '),
            _ => bytes.push(b),
        }
    }
    if bytes.len() > MAX_VALUE_BYTES {
        return Err(BadInput::TooLong {
            what: what.to_owned(),
        });
    }
    String::from_utf8(bytes).map_err(|_| bad())
}

fn hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_and_plus() {
        assert_eq!(decode("a%2Fb+c%20d", true, "x"), Ok("a/b c d".to_owned()));
        assert_eq!(decode("a+b", false, "x"), Ok("a+b".to_owned()));
        assert_eq!(decode("%C3%A9", true, "x"), Ok("é".to_owned()));
    }

    #[test]
    fn refuses_bad_escapes_and_non_utf8() {
        for bad in ["%", "%4", "%zz", "%FF", "a%C3"] {
            assert!(decode(bad, true, "x").is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_values_longer_than_a_key() {
        let long = "k".repeat(MAX_VALUE_BYTES + 1);
        assert!(matches!(
            decode(&long, true, "x"),
            Err(BadInput::TooLong { .. })
        ));
        assert!(decode(&long[1..], true, "x").is_ok());
    }

    #[test]
    fn parses_known_parameters_once_each() {
        let q = Query::parse(
            Some("pipeline=clicks&prefix=u%3A1&limit=5"),
            &["pipeline", "prefix", "limit"],
        );
        let q = q.map_err(|e| e.to_string());
        let q = q
            .as_ref()
            .map(|q| (q.get("pipeline"), q.get("prefix"), q.limit()));
        assert_eq!(q, Ok((Some("clicks"), Some("u:1"), Ok(Some(5)))));
        assert!(matches!(
            Query::parse(Some("limt=5"), &["limit"]),
            Err(BadInput::UnknownParameter { .. })
        ));
        assert!(matches!(
            Query::parse(Some("limit=5&limit=6"), &["limit"]),
            Err(BadInput::Repeated { .. })
        ));
    }

    #[test]
    fn limit_is_a_positive_integer_up_to_ten_thousand() {
        for good in ["1", "100", "10000"] {
            let q = Query::parse(Some(&format!("limit={good}")), &["limit"]);
            assert!(matches!(q.map(|q| q.limit()), Ok(Ok(Some(_)))), "{good}");
        }
        for bad in [
            "0",
            "10001",
            "-1",
            "abc",
            "",
            "1.5",
            "+5",
            "99999999999999999999999",
        ] {
            let q = Query::parse(Some(&format!("limit={bad}")), &["limit"]);
            assert!(
                matches!(q.map(|q| q.limit()), Ok(Err(BadInput::Limit { .. }))),
                "{bad}"
            );
        }
    }
}
