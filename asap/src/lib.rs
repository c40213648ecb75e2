//! asap (placeholder, being written).
