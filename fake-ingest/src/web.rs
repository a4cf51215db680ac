//! `GET /`: the live page, one self-contained HTML file (`assets/index.html`: HTML, CSS and JavaScript inline, no
//! CDN, no build step) embedded in the binary. It polls the control API once a second: `GET /_fake/stats` for the
//! counters and the events/errors-per-second chart, `GET /_fake/events` for the latest captured events, and changes
//! the fault plan with `PUT /_fake/faults` (presets or a JSON editor) and everything with `POST /_fake/reset`.

/// The page served at `GET /`.
pub(crate) const INDEX_HTML: &str = include_str!("../assets/index.html");

/// The `Content-Type` of the page.
pub(crate) const INDEX_CONTENT_TYPE: &str = "text/html; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_self_contained() {
        assert!(INDEX_HTML.starts_with("<!doctype html>"));
        for external in [
            "<script src",
            "<link rel=\"stylesheet\"",
            "http://",
            "https://",
        ] {
            assert!(
                !INDEX_HTML.contains(external),
                "the page must not load {external}"
            );
        }
    }

    #[test]
    fn the_page_polls_the_control_api() {
        for path in [
            "/_fake/stats",
            "/_fake/events",
            "/_fake/faults",
            "/_fake/reset",
        ] {
            assert!(INDEX_HTML.contains(path), "the page must use {path}");
        }
    }
}
