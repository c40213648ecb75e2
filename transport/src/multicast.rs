//! multicast (being written).
