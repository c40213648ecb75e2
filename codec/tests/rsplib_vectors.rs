//! Goal: we decode every ASAP/ENRP message RSPLIB 3.4.4 sent in the lab capture and re-emit
//! it byte for byte. Method: the payloads were extracted with tshark from
//! `target-lab/smoke/rsplib-lab.pcap` into `tests/vectors/rsplib-3.4.4.txt`; each is parsed,
//! emitted into a 0xa5-filled buffer and compared.

mod common;

#[test]
fn rsplib_capture_round_trips_byte_for_byte() {
    let vectors = common::rsplib_vectors();
    assert!(vectors.len() >= 20, "the vector file lost its messages");
    for (protocol, frame, bytes) in vectors {
        let emitted = match protocol.as_str() {
            "asap" => {
                let m = codec::asap::Message::parse(&bytes)
                    .unwrap_or_else(|e| panic!("frame {frame}: {e}"));
                let mut out = vec![0xa5; m.buffer_len()];
                assert_eq!(m.emit(&mut out), out.len());
                out
            }
            _ => {
                let m = codec::enrp::Message::parse(&bytes)
                    .unwrap_or_else(|e| panic!("frame {frame}: {e}"));
                let mut out = vec![0xa5; m.buffer_len()];
                assert_eq!(m.emit(&mut out), out.len());
                out
            }
        };
        assert_eq!(emitted, bytes, "frame {frame} ({protocol}) re-emits differently");
    }
}

/// Goal: the hot-path view agrees with the Repr on RSPLIB's Handle Resolution (with the
/// 0x803f option). Method: parse the captured message both ways.
#[test]
fn rsplib_handle_resolution_view_matches_repr() {
    let (_, _, bytes) = common::rsplib_vectors()
        .into_iter()
        .find(|(p, _, b)| p == "asap" && b[0] == 0x05)
        .expect("capture has a handle resolution");
    let view = codec::asap::HandleResolutionView::new_checked(&bytes[..]).unwrap();
    assert_eq!(view.pool_handle_bytes(), b"EchoPool");
    assert_eq!(view.items_wanted(), Some(1));
    assert!(!view.subscribe());
}
