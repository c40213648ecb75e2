//! kernel_sctp (being written).
