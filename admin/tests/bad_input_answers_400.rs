//! Bad query values, bad encodings and oversized input answer 400 before the backend is
//! asked.

mod common;

use common::{assert_error, get, router};
use weir_admin::{MAX_BODY_BYTES, Method, Request};

#[test]
fn limit_must_be_a_positive_integer_up_to_ten_thousand() {
    let (_, router) = router();
    for limit in [
        "0",
        "-1",
        "10001",
        "abc",
        "1.5",
        "",
        "1e3",
        "18446744073709551616",
    ] {
        for route in ["/windows", "/state?pipeline=clicks"] {
            let sep = if route.contains('?') { '&' } else { '?' };
            let target = format!("{route}{sep}limit={limit}");
            assert_error(
                &get(&router, &target),
                400,
                "limit must be an integer from 1 to 10000",
            );
        }
    }
    assert_eq!(get(&router, "/windows?limit=10000").status(), 200);
}

#[test]
fn unknown_repeated_or_empty_parameters_are_refused() {
    let (_, router) = router();
    assert_error(
        &get(&router, "/windows?limt=5"),
        400,
        "unknown query parameter \"limt\"",
    );
    assert_error(
        &get(&router, "/status?verbose=1"),
        400,
        "unknown query parameter",
    );
    assert_error(
        &get(&router, "/windows?limit=1&limit=2"),
        400,
        "more than once",
    );
    assert_error(
        &get(&router, "/windows?pipeline="),
        400,
        "must not be empty",
    );
    assert_error(
        &get(&router, "/state?pipeline=clicks&prefix="),
        400,
        "must not be empty",
    );
    assert_error(
        &get(&router, "/state?prefix=u"),
        400,
        "needs the query parameter \"pipeline\"",
    );
    assert_error(
        &get(&router, "/state?limit=5"),
        400,
        "needs the query parameter \"pipeline\"",
    );
}

#[test]
fn bad_encodings_and_oversized_values_are_refused() {
    let (_, router) = router();
    assert_error(
        &get(&router, "/state?pipeline=clicks&prefix=%zz"),
        400,
        "percent-encoded",
    );
    assert_error(
        &get(&router, "/state?pipeline=clicks&prefix=%FF"),
        400,
        "percent-encoded",
    );
    assert_error(&get(&router, "/state/clicks/%C3"), 400, "percent-encoded");
    let long = "k".repeat(1025);
    assert_error(
        &get(&router, &format!("/state?pipeline=clicks&prefix={long}")),
        400,
        "longer than 1024",
    );
    assert_error(
        &get(&router, &format!("/state/clicks/{long}")),
        400,
        "longer than 1024",
    );
    let huge = format!("/state?pipeline=clicks&prefix={}", "k".repeat(9000));
    assert_error(&get(&router, &huge), 400, "request target is longer");
    // A key of exactly the longest allowed length is fine.
    assert_eq!(
        get(&router, &format!("/state/clicks/{}", &long[1..])).status(),
        200
    );
}

#[test]
fn bodies_over_64_kib_are_refused() {
    let (_, router) = router();
    let big = Request::new(Method::Post, "/checkpoint").with_body(vec![b'x'; MAX_BODY_BYTES + 1]);
    assert_error(&router.handle(&big), 400, "larger than 65536 bytes");
    let declared =
        Request::new(Method::Post, "/checkpoint").with_header("Content-Length", "1000000");
    assert_error(&router.handle(&declared), 400, "larger than 65536 bytes");
    let fits = Request::new(Method::Post, "/checkpoint").with_body(vec![b'x'; MAX_BODY_BYTES]);
    assert_eq!(router.handle(&fits).status(), 200);
}
