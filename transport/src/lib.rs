//! transport (placeholder, being written).
