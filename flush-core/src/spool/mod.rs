//! The crash-safe on-disk spool (issue 4, being built).
