//! RFC 6458 structures as the Linux kernel lays them out (include/uapi/linux/sctp.h), parsed
//! from and written to byte arrays, so the parsing runs and is tested on hosts without SCTP.
//! Every parser checks lengths first and never panics on kernel-provided bytes.

use std::mem;

use crate::api::{AssocId, Ppid, StreamId};

/// `SOL_SCTP` (= `IPPROTO_SCTP`).
pub(crate) const SOL_SCTP: i32 = 132;
/// Socket options (linux/sctp.h).
pub(crate) const SCTP_INITMSG: i32 = 2;
pub(crate) const SCTP_NODELAY: i32 = 3;
pub(crate) const SCTP_RECVRCVINFO: i32 = 32;
pub(crate) const SCTP_SOCKOPT_BINDX_ADD: i32 = 100;
pub(crate) const SCTP_GET_PEER_ADDRS: i32 = 108;
pub(crate) const SCTP_SOCKOPT_CONNECTX3: i32 = 111;
pub(crate) const SCTP_EVENT: i32 = 127;
/// `se_assoc_id` meaning "associations created from now on" (RFC 6458 §7.2).
pub(crate) const SCTP_FUTURE_ASSOC: i32 = 0;

/// cmsg types at level `SOL_SCTP` (RFC 6458 §5.3).
pub(crate) const SCTP_SNDINFO: i32 = 2;
pub(crate) const SCTP_RCVINFO: i32 = 3;

/// `snd_flags` (RFC 6458 §5.3.4).
pub(crate) const SCTP_ABORT: u16 = 0x4;
pub(crate) const SCTP_EOF: u16 = libc::MSG_FIN as u16;

/// Notification types (RFC 6458 §6.1, `enum sctp_sn_type`).
pub(crate) const SCTP_ASSOC_CHANGE: u16 = 0x8001;
pub(crate) const SCTP_SHUTDOWN_EVENT: u16 = 0x8005;
pub(crate) const SCTP_SEND_FAILED_EVENT: u16 = 0x800d;

/// `sac_state` values (RFC 6458 §6.1.1).
const SCTP_COMM_UP: u16 = 0;
const SCTP_COMM_LOST: u16 = 1;
const SCTP_RESTART: u16 = 2;
const SCTP_SHUTDOWN_COMP: u16 = 3;
const SCTP_CANT_STR_ASSOC: u16 = 4;

/// `struct sctp_sndinfo`: sid u16, flags u16, ppid u32 (network order), context u32, assoc i32.
pub(crate) const SNDINFO_LEN: usize = 16;
/// `struct sctp_rcvinfo`: sid, ssn, flags (u16 each, then 2 pad), ppid, tsn, cumtsn, context,
/// assoc (u32/i32 each).
pub(crate) const RCVINFO_LEN: usize = 28;
const ASSOC_CHANGE_LEN: usize = 20;
const SHUTDOWN_EVENT_LEN: usize = 12;
const SEND_FAILED_EVENT_HEADER_LEN: usize = 32;
/// `struct sctp_event`: assoc i32, type u16, on u8, pad.
pub(crate) const EVENT_LEN: usize = 8;

/// What the application learns from an `SCTP_SNDINFO`/`SCTP_RCVINFO` cmsg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageInfo {
    /// Association.
    pub assoc: AssocId,
    /// Stream.
    pub stream: StreamId,
    /// Payload protocol identifier, host order.
    pub ppid: Ppid,
    /// `snd_flags` / `rcv_flags`.
    pub flags: u16,
}

/// A parsed `MSG_NOTIFICATION` (RFC 6458 §6.1), only the kinds we subscribe to.
#[derive(Debug, PartialEq, Eq)]
pub enum Notification<'a> {
    /// `SCTP_ASSOC_CHANGE`.
    AssocChange {
        /// Association.
        assoc: AssocId,
        /// What changed.
        state: AssocState,
        /// `sac_error`.
        error: u16,
    },
    /// `SCTP_SEND_FAILED_EVENT`: the message that could not be sent, with its send info.
    SendFailed {
        /// Send info of the failed message (its `assoc` is `ssf_assoc_id`).
        info: MessageInfo,
        /// `ssf_error`.
        error: u32,
        /// The undelivered data.
        data: &'a [u8],
    },
    /// `SCTP_SHUTDOWN_EVENT`: the peer sent SHUTDOWN; no more data will arrive.
    Shutdown {
        /// Association.
        assoc: AssocId,
    },
    /// A kind we did not subscribe to, or a state added after RFC 6458.
    Unknown {
        /// `sn_type`.
        kind: u16,
    },
}

/// `sac_state` (RFC 6458 §6.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssocState {
    /// `SCTP_CANT_STR_ASSOC`.
    CantStart,
    /// `SCTP_COMM_LOST`.
    CommLost,
    /// `SCTP_COMM_UP`.
    CommUp,
    /// `SCTP_RESTART`.
    Restart,
    /// `SCTP_SHUTDOWN_COMP`.
    ShutdownComplete,
    /// A value this code does not know.
    Unknown(u16),
}

/// Why bytes were not a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than its fixed header, or than its own length field.
    Truncated(&'static str),
}

/// Parses one notification. Its `sn_length` must not exceed the bytes given.
pub fn parse_notification(bytes: &[u8]) -> Result<Notification<'_>, WireError> {
    let kind = read_u16(bytes, 0).ok_or(WireError::Truncated("sn_type"))?;
    let length = read_u32(bytes, 4).ok_or(WireError::Truncated("sn_length"))? as usize;
    let bytes = bytes.get(..length).ok_or(WireError::Truncated("sn_length"))?;
    match kind {
        SCTP_ASSOC_CHANGE => {
            if bytes.len() < ASSOC_CHANGE_LEN {
                return Err(WireError::Truncated("sctp_assoc_change"));
            }
            let state = match read_u16(bytes, 8).unwrap_or(u16::MAX) {
                SCTP_COMM_UP => AssocState::CommUp,
                SCTP_COMM_LOST => AssocState::CommLost,
                SCTP_RESTART => AssocState::Restart,
                SCTP_SHUTDOWN_COMP => AssocState::ShutdownComplete,
                SCTP_CANT_STR_ASSOC => AssocState::CantStart,
                other => AssocState::Unknown(other),
            };
            let error = read_u16(bytes, 10).unwrap_or(0);
            let assoc = AssocId(read_u32(bytes, 16).unwrap_or(0));
            Ok(Notification::AssocChange { assoc, state, error })
        }
        SCTP_SHUTDOWN_EVENT => {
            if bytes.len() < SHUTDOWN_EVENT_LEN {
                return Err(WireError::Truncated("sctp_shutdown_event"));
            }
            Ok(Notification::Shutdown { assoc: AssocId(read_u32(bytes, 8).unwrap_or(0)) })
        }
        SCTP_SEND_FAILED_EVENT => {
            if bytes.len() < SEND_FAILED_EVENT_HEADER_LEN {
                return Err(WireError::Truncated("sctp_send_failed_event"));
            }
            let error = read_u32(bytes, 8).unwrap_or(0);
            let mut info = parse_sndinfo(&bytes[12..12 + SNDINFO_LEN])
                .ok_or(WireError::Truncated("ssfe_info"))?;
            info.assoc = AssocId(read_u32(bytes, 28).unwrap_or(0));
            Ok(Notification::SendFailed {
                info,
                error,
                data: &bytes[SEND_FAILED_EVENT_HEADER_LEN..],
            })
        }
        kind => Ok(Notification::Unknown { kind }),
    }
}

/// Finds the `SCTP_RCVINFO` cmsg in a control buffer and parses it.
pub fn find_rcvinfo(control: &[u8]) -> Option<MessageInfo> {
    let mut rest = control;
    while let Some((level, kind, data, next)) = next_cmsg(rest) {
        if level == SOL_SCTP && kind == SCTP_RCVINFO && data.len() >= RCVINFO_LEN {
            let stream = StreamId(read_u16(data, 0)?);
            let flags = read_u16(data, 4)?;
            // PPID travels opaquely through the kernel: it is in network order.
            let ppid = Ppid(u32::from_be(read_u32(data, 8)?));
            let assoc = AssocId(read_u32(data, 24)?);
            return Some(MessageInfo { assoc, stream, ppid, flags });
        }
        rest = next;
    }
    None
}

/// Writes one `SCTP_SNDINFO` cmsg (header and data) at the start of `out`; returns its space.
pub fn write_sndinfo_cmsg(out: &mut [u8], info: &MessageInfo) -> usize {
    let space = cmsg_space(SNDINFO_LEN);
    assert!(out.len() >= space);
    out[..space].fill(0);
    let header = mem::size_of::<libc::cmsghdr>();
    out[..mem::size_of::<usize>()].copy_from_slice(&cmsg_len(SNDINFO_LEN).to_ne_bytes());
    out[8..12].copy_from_slice(&SOL_SCTP.to_ne_bytes());
    out[12..16].copy_from_slice(&SCTP_SNDINFO.to_ne_bytes());
    let data = &mut out[header..header + SNDINFO_LEN];
    data[0..2].copy_from_slice(&info.stream.0.to_ne_bytes());
    data[2..4].copy_from_slice(&info.flags.to_ne_bytes());
    data[4..8].copy_from_slice(&info.ppid.0.to_be().to_ne_bytes());
    // snd_context stays 0.
    data[12..16].copy_from_slice(&info.assoc.0.to_ne_bytes());
    space
}

/// Writes a `struct sctp_event` subscription.
pub(crate) fn sctp_event(kind: u16, on: bool) -> [u8; EVENT_LEN] {
    let mut out = [0u8; EVENT_LEN];
    out[0..4].copy_from_slice(&SCTP_FUTURE_ASSOC.to_ne_bytes());
    out[4..6].copy_from_slice(&kind.to_ne_bytes());
    out[6] = u8::from(on);
    out
}

fn parse_sndinfo(data: &[u8]) -> Option<MessageInfo> {
    Some(MessageInfo {
        stream: StreamId(read_u16(data, 0)?),
        flags: read_u16(data, 2)?,
        ppid: Ppid(u32::from_be(read_u32(data, 4)?)),
        assoc: AssocId(read_u32(data, 12)?),
    })
}

/// Splits the first cmsg off `buf`: (level, type, data, rest). `None` at the end or on a bad
/// length (a corrupt list is dropped, not resynchronised).
fn next_cmsg(buf: &[u8]) -> Option<(i32, i32, &[u8], &[u8])> {
    let header = mem::size_of::<libc::cmsghdr>();
    if buf.len() < header {
        return None;
    }
    let len = usize::from_ne_bytes(buf[..mem::size_of::<usize>()].try_into().ok()?);
    if len < header || len > buf.len() {
        return None;
    }
    let level = i32::from_ne_bytes(buf[8..12].try_into().ok()?);
    let kind = i32::from_ne_bytes(buf[12..16].try_into().ok()?);
    let next = align(len).min(buf.len());
    Some((level, kind, &buf[header..len], &buf[next..]))
}

/// `CMSG_SPACE`: header plus data, aligned.
pub(crate) const fn cmsg_space(data: usize) -> usize {
    align(mem::size_of::<libc::cmsghdr>()) + align(data)
}

/// `CMSG_LEN`: header plus data, unaligned.
const fn cmsg_len(data: usize) -> usize {
    align(mem::size_of::<libc::cmsghdr>()) + data
}

const fn align(len: usize) -> usize {
    let a = mem::size_of::<usize>();
    (len + a - 1) & !(a - 1)
}

// The byte offsets above assume the 64-bit Linux cmsghdr: usize len, i32 level, i32 type.
const _: () = assert!(mem::size_of::<libc::cmsghdr>() == 16);

fn read_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assoc_change(state: u16, assoc: u32) -> Vec<u8> {
        let mut b = vec![0u8; ASSOC_CHANGE_LEN];
        b[0..2].copy_from_slice(&SCTP_ASSOC_CHANGE.to_ne_bytes());
        b[4..8].copy_from_slice(&(ASSOC_CHANGE_LEN as u32).to_ne_bytes());
        b[8..10].copy_from_slice(&state.to_ne_bytes());
        b[10..12].copy_from_slice(&7u16.to_ne_bytes());
        b[12..14].copy_from_slice(&10u16.to_ne_bytes());
        b[14..16].copy_from_slice(&10u16.to_ne_bytes());
        b[16..20].copy_from_slice(&assoc.to_ne_bytes());
        b
    }

    // Goal: every sac_state maps (RFC 6458 §6.1.1). Method: bytes laid out as linux/sctp.h.
    #[test]
    fn notification_assoc_change_states() {
        let cases = [
            (0, AssocState::CommUp),
            (1, AssocState::CommLost),
            (2, AssocState::Restart),
            (3, AssocState::ShutdownComplete),
            (4, AssocState::CantStart),
            (9, AssocState::Unknown(9)),
        ];
        for (raw, state) in cases {
            let bytes = assoc_change(raw, 42);
            let expect = Notification::AssocChange { assoc: AssocId(42), state, error: 7 };
            assert_eq!(parse_notification(&bytes), Ok(expect));
        }
    }

    // Goal: a send-failed event yields its send info and data, PPID converted from network
    // order. Method: a 36-byte event carrying 4 bytes of data for PPID 11 on stream 3.
    #[test]
    fn notification_send_failed_event() {
        let mut b = vec![0u8; SEND_FAILED_EVENT_HEADER_LEN + 4];
        b[0..2].copy_from_slice(&SCTP_SEND_FAILED_EVENT.to_ne_bytes());
        let len = b.len() as u32;
        b[4..8].copy_from_slice(&len.to_ne_bytes());
        b[8..12].copy_from_slice(&5u32.to_ne_bytes());
        b[12..14].copy_from_slice(&3u16.to_ne_bytes());
        b[16..20].copy_from_slice(&11u32.to_be().to_ne_bytes());
        b[28..32].copy_from_slice(&9u32.to_ne_bytes());
        b[32..].copy_from_slice(b"asap");
        let info =
            MessageInfo { assoc: AssocId(9), stream: StreamId(3), ppid: Ppid::ASAP, flags: 0 };
        let expect = Notification::SendFailed { info, error: 5, data: b"asap" };
        assert_eq!(parse_notification(&b), Ok(expect));
    }

    // Goal: shutdown and unknown kinds parse. Method: a shutdown event and a PEER_ADDR_CHANGE.
    #[test]
    fn notification_shutdown_and_unknown() {
        let mut b = vec![0u8; SHUTDOWN_EVENT_LEN];
        b[0..2].copy_from_slice(&SCTP_SHUTDOWN_EVENT.to_ne_bytes());
        b[4..8].copy_from_slice(&(SHUTDOWN_EVENT_LEN as u32).to_ne_bytes());
        b[8..12].copy_from_slice(&3u32.to_ne_bytes());
        assert_eq!(parse_notification(&b), Ok(Notification::Shutdown { assoc: AssocId(3) }));
        b[0..2].copy_from_slice(&0x8002u16.to_ne_bytes());
        assert_eq!(parse_notification(&b), Ok(Notification::Unknown { kind: 0x8002 }));
    }

    // Goal: truncated notifications are errors, never panics. Method: cut each sample at every
    // length (outer loop), and rewrite sn_length to every smaller value (inner loop).
    #[test]
    fn notification_truncation_never_panics() {
        let samples = [assoc_change(0, 1), {
            let mut b = vec![0u8; SEND_FAILED_EVENT_HEADER_LEN];
            b[0..2].copy_from_slice(&SCTP_SEND_FAILED_EVENT.to_ne_bytes());
            let len = b.len() as u32;
            b[4..8].copy_from_slice(&len.to_ne_bytes());
            b
        }];
        for sample in samples {
            for cut in 0..sample.len() {
                assert!(parse_notification(&sample[..cut]).is_err());
                let mut shorter = sample.clone();
                for len in 0..sample.len() as u32 {
                    shorter[4..8].copy_from_slice(&len.to_ne_bytes());
                    assert!(parse_notification(&shorter).is_err());
                }
            }
        }
    }

    // Goal: a written SCTP_SNDINFO cmsg reads back as the same info, and SCTP_RCVINFO is found
    // after another cmsg. Method: write sndinfo, then build a control buffer by hand.
    #[test]
    fn cmsg_sndinfo_and_rcvinfo() {
        let info =
            MessageInfo { assoc: AssocId(5), stream: StreamId(2), ppid: Ppid::ENRP, flags: 1 };
        let mut out = [0xa5u8; 64];
        let space = write_sndinfo_cmsg(&mut out, &info);
        assert_eq!(space, 32);
        let (level, kind, data, rest) = next_cmsg(&out[..space]).unwrap();
        assert_eq!((level, kind, rest.len()), (SOL_SCTP, SCTP_SNDINFO, 0));
        assert_eq!(parse_sndinfo(data), Some(info));

        let mut control = vec![0u8; cmsg_space(4) + cmsg_space(RCVINFO_LEN)];
        control[..8].copy_from_slice(&cmsg_len(4).to_ne_bytes());
        control[8..12].copy_from_slice(&libc::SOL_SOCKET.to_ne_bytes());
        let at = cmsg_space(4);
        control[at..at + 8].copy_from_slice(&cmsg_len(RCVINFO_LEN).to_ne_bytes());
        control[at + 8..at + 12].copy_from_slice(&SOL_SCTP.to_ne_bytes());
        control[at + 12..at + 16].copy_from_slice(&SCTP_RCVINFO.to_ne_bytes());
        let d = at + 16;
        control[d..d + 2].copy_from_slice(&4u16.to_ne_bytes());
        control[d + 8..d + 12].copy_from_slice(&12u32.to_be().to_ne_bytes());
        control[d + 24..d + 28].copy_from_slice(&77u32.to_ne_bytes());
        let got = find_rcvinfo(&control).unwrap();
        assert_eq!(
            got,
            MessageInfo { assoc: AssocId(77), stream: StreamId(4), ppid: Ppid::ENRP, flags: 0 }
        );
        // Every truncation of the list is handled without panicking.
        let end = at + cmsg_len(RCVINFO_LEN);
        for cut in 0..control.len() {
            assert_eq!(find_rcvinfo(&control[..cut]).is_some(), cut >= end);
        }
    }
}
