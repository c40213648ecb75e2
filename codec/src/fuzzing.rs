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
        assert_eq!(v.unrecognized_to_report().count(), v.unrecognized_to_report().count());
    }
    views(data);
}

/// The view path: walking the parameters of any message never panics.
fn views(data: &[u8]) {
    if let Ok(v) = crate::message::MessageView::new_checked(data) {
        let body = v.body();
        for fixed in [0, 4, 8, 12] {
            if let Some(rest) = body.get(fixed..) {
                for p in crate::message::Parameters::new(rest, 4 + fixed).flatten() {
                    let _ = (p.parameter_type(), p.length(), p.value().len());
                }
            }
        }
    }
}

/// ENRP: `parse(emit(parse(b))) == parse(b)`.
pub fn enrp_message(data: &[u8]) {
    if let Ok(m) = crate::enrp::Message::parse(data) {
        let bytes = m.emit_to_vec();
        assert_eq!(crate::enrp::Message::parse(&bytes).as_ref(), Ok(&m));
    }
    if let Ok(v) = crate::enrp::HandleUpdateView::new_checked(data) {
        let _ = (v.sender(), v.receiver(), v.action(), v.parameters().count());
    }
    views(data);
}

/// One parameter: `parse(emit(parse(b))) == parse(b)`.
pub fn parameter(data: &[u8]) {
    if let Ok(p) = crate::param::Parameter::parse(data) {
        let mut bytes = vec![0xa5; p.buffer_len()];
        p.emit(&mut bytes);
        assert_eq!(crate::param::Parameter::parse(&bytes).as_ref(), Ok(&p));
    }
}
