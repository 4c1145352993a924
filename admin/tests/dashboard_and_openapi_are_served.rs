//! `GET /` serves the self-contained dashboard; `GET /openapi.yaml` documents every route.

mod common;

use common::{get, router};
use weir_admin::{Method, ROUTES};

#[test]
fn dashboard_is_one_self_contained_page() {
    let (_, router) = router();
    let page = get(&router, "/");
    assert_eq!(page.status(), 200);
    assert_eq!(page.content_type(), "text/html; charset=utf-8");
    let html = page.body_str();
    assert!(html.contains("<canvas"), "charts are drawn on canvas");
    for external in [
        "src=\"http",
        "href=\"http",
        "src=\"//",
        "href=\"//",
        "@import",
    ] {
        assert!(
            !html.contains(external),
            "no external resource ({external})"
        );
    }
    for api in [
        "/status",
        "/pipelines",
        "/stats",
        "/watermarks",
        "/checkpoints",
        "/checkpoint",
    ] {
        assert!(html.contains(api), "polls {api}");
    }
    for id in [
        "rate-",
        "latency-p99-",
        "lag-",
        "windows-",
        "late-",
        "dropped-",
        "id=\"checkpoints\"",
        "id=\"token\"",
    ] {
        assert!(html.contains(id), "has stable id {id}");
    }
    assert!(
        html.contains("localStorage"),
        "the token is kept in localStorage"
    );
    assert!(
        html.contains("Bearer "),
        "the token is sent as a bearer token"
    );
}

#[test]
fn openapi_documents_every_route_with_its_method() {
    let (_, router) = router();
    let doc = get(&router, "/openapi.yaml");
    assert_eq!(doc.status(), 200);
    assert_eq!(doc.content_type(), "application/yaml");
    let yaml = doc.body_str();
    assert!(yaml.starts_with("openapi: 3."));
    for route in ROUTES {
        let at = yaml.find(&format!("\n  {}:\n", route.path));
        assert!(at.is_some(), "{} is documented", route.path);
        let section = &yaml[at.unwrap_or_default() + 1..];
        let section = &section[..section[3..]
            .find("\n  /")
            .map_or(section.len(), |end| end + 3)];
        let method = if route.method == Method::Post {
            "post:"
        } else {
            "get:"
        };
        assert!(
            section.contains(&format!("\n    {method}")),
            "{} has {method}",
            route.path
        );
    }
}
