//! Spool integration tests (issue 4).
