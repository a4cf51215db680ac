//! scenarios: the end-to-end harness (issue 6). Not built yet.
