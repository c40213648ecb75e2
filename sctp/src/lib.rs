//! sctp (placeholder, being written).
