//! One harness per decoder entry point, shared by the cargo-fuzz targets (and usable from
//! tests): parse; on success, emit, re-parse and compare. Any panic is a bug.

/// ASAP: `parse(emit(parse(b))) == parse(b)`.
pub fn asap_message(data: &[u8]) {
    if let Ok(m) = crate::asap::Message::parse(data) {
        let bytes = m.emit_to_vec();
        assert_eq!(crate::asap::Message::parse(&bytes).as_ref(), Ok(&m));
    }
    if let Ok(v) = crate::asap::HandleResolutionView::new_checked(data) {
        let _ = (v.pool_handle(), v.items_wanted(), v.subscribe());
    }
}

/// ENRP: `parse(emit(parse(b))) == parse(b)`.
pub fn enrp_message(data: &[u8]) {
    if let Ok(m) = crate::enrp::Message::parse(data) {
        let bytes = m.emit_to_vec();
        assert_eq!(crate::enrp::Message::parse(&bytes).as_ref(), Ok(&m));
    }
}

/// One parameter: `parse(emit(parse(b))) == parse(b)`.
pub fn parameter(data: &[u8]) {
    if let Ok(p) = crate::param::Parameter::parse(data) {
        let mut bytes = vec![0xa5; p.buffer_len()];
        p.emit(&mut bytes);
        assert_eq!(crate::param::Parameter::parse(&bytes).as_ref(), Ok(&p));
    }
}
