//! Reporter integration tests (issue 5).
