//! Steering SCTP-over-UDP packets to the core that owns their association.
//!
//! Plain `SO_REUSEPORT` picks a socket by a hash of the 4-tuple. That keeps an association on
//! one core only while its 4-tuple stays the same, and it cannot send the replies to an
//! association *we* opened back to the core that opened it: the hash is keyed by a kernel
//! secret. Every SCTP packet after the handshake carries the verification tag the receiver
//! chose (RFC 9260 §8.5), at bytes 4..8 of the UDP payload (RFC 6951 §5). So if each core picks
//! its tags with `tag % cores == core`, this classic-BPF program steers every packet of an
//! association to its owner; packets with tag 0 (INIT, RFC 9260 §8.5.1) fall back to the hash.
//!
//! Requirements: the sockets of the group are bound in core order (core `i` binds `i`-th, since
//! the program returns an index into the group), and the SCTP stack on core `i` chooses every
//! local verification tag with `tag % cores == i`. Without the second, do not enable this.

use std::io;
use std::os::fd::RawFd;

/// `SO_ATTACH_REUSEPORT_CBPF` (asm-generic/socket.h).
const SO_ATTACH_REUSEPORT_CBPF: i32 = 51;

/// Classic BPF opcodes (linux/bpf_common.h).
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JEQ_K: u16 = 0x15;
const BPF_RET_K: u16 = 0x06;
const BPF_ALU_MOD_K: u16 = 0x94;
const BPF_RET_A: u16 = 0x16;
/// Offset of the verification tag in an SCTP common header (= in the UDP payload).
const VERIFICATION_TAG_OFFSET: u32 = 4;
/// An out-of-range socket index: the kernel then falls back to the 4-tuple hash.
const INDEX_FALLBACK: u32 = u32::MAX;

/// Attaches the verification-tag steering program to the reuseport group of `fd`.
pub(crate) fn steer_by_verification_tag(fd: RawFd, cores: u32) -> io::Result<()> {
    assert!(cores >= 1);
    let insn = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let program = [
        insn(BPF_LD_W_ABS, 0, 0, VERIFICATION_TAG_OFFSET),
        // Tag 0: an INIT (or a packet too short to load, which also leaves A = 0 by aborting).
        insn(BPF_JMP_JEQ_K, 0, 1, 0),
        insn(BPF_RET_K, 0, 0, INDEX_FALLBACK),
        insn(BPF_ALU_MOD_K, 0, 0, cores),
        insn(BPF_RET_A, 0, 0, 0),
    ];
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: fprog points at `program`, alive across the call; the kernel copies it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            SO_ATTACH_REUSEPORT_CBPF,
            (&fprog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
