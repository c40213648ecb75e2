//! handlespace (placeholder, being written).
