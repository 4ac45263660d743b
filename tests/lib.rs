//! End-to-end tests across the workspace live in `chain.rs`; shared fixtures in `fixtures/`.
