//! udp_batch (being written).
