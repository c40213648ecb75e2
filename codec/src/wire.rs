//! The cursor that parses by shrinking, the writer that emits, and the TLV walk with the
//! unknown-parameter rule. Private: the public surface is views and Reprs.

use crate::error::{DecodeError, DecodeErrorKind};
use crate::param::ParameterType;

/// Rounds a length up to the next multiple of four (RFC 5354 §3 padding).
pub(crate) const fn pad4(length: usize) -> usize {
    (length + 3) & !3
}

/// A parse cursor over `buf`, which starts at absolute offset `base` of the outermost buffer.
#[derive(Clone, Copy)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    base: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], base: usize) -> Self {
        Self { buf, base }
    }

    pub(crate) fn offset(&self) -> usize {
        self.base
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf
    }

    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError::new(DecodeErrorKind::Truncated, field, self.base));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        self.base += n;
        Ok(head)
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        let b = self.take(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Fails on trailing bytes: for parses that must consume their whole input.
    pub(crate) fn finish(&self, field: &'static str) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::new(DecodeErrorKind::Trailing, field, self.base))
        }
    }

    /// Reads the next TLV, or `None` at the end. The padding after it is skipped and must be
    /// zero; the last TLV of a container may omit its padding (RFC 5354 §2: a container's length
    /// does not cover its last padding).
    #[inline]
    pub(crate) fn tlv(&mut self) -> Result<Option<Tlv<'a>>, DecodeError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let offset = self.base;
        let all = self.buf;
        let ty = ParameterType(self.u16("ParameterType")?);
        let length = usize::from(self.u16("ParameterLength")?);
        let value_len = length.checked_sub(TLV_HEADER_LEN).ok_or(DecodeError::new(
            DecodeErrorKind::BadLength,
            "ParameterLength",
            offset + 2,
        ))?;
        let value = self.take(value_len, "ParameterValue")?;
        let padding_len = pad4(length) - length;
        if !self.buf.is_empty() {
            let padding = self.take(padding_len, "ParameterPadding")?;
            if padding.iter().any(|&b| b != 0) {
                return Err(DecodeError::new(
                    DecodeErrorKind::BadPadding,
                    "ParameterPadding",
                    self.base - padding_len,
                ));
            }
        }
        // `length` bytes were taken above, so this slice is in bounds.
        let raw = &all[..length];
        Ok(Some(Tlv { ty, value: Reader::new(value, offset + TLV_HEADER_LEN), offset, raw }))
    }
}

/// One parameter found by [`Reader::tlv`].
#[derive(Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub(crate) ty: ParameterType,
    /// The value, a reader bounded by the declared length.
    pub(crate) value: Reader<'a>,
    /// Absolute offset of the parameter header.
    pub(crate) offset: usize,
    /// Header and value, without padding.
    pub(crate) raw: &'a [u8],
}

/// Writes into a buffer sized by `buffer_len()`. Running past the end is a programmer error in
/// a `buffer_len` computation, so slice indexing may panic here, never in parsing.
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
    /// Padding written by the TLV that ended last, zero after any other write.
    last_padding: usize,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, pos: 0, last_padding: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    #[inline]
    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        self.buf[self.pos..self.pos + bytes.len()].copy_from_slice(bytes);
        self.pos += bytes.len();
        self.last_padding = 0;
    }

    #[inline]
    pub(crate) fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }

    #[inline]
    pub(crate) fn u32(&mut self, v: u32) {
        self.bytes(&v.to_be_bytes());
    }

    /// The next `n` bytes, for a caller that writes them whole (a value without padding).
    pub(crate) fn take(&mut self, n: usize) -> &mut [u8] {
        let start = self.pos;
        self.pos += n;
        self.last_padding = 0;
        &mut self.buf[start..self.pos]
    }

    /// Overwrites four already written bytes at `at` (an absolute position).
    pub(crate) fn patch_u32(&mut self, at: usize, v: u32) {
        assert!(at + 4 <= self.pos, "patches only what was written");
        self.buf[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }

    /// Declares that the bytes just written ended with `padding` bytes of TLV padding (a TLV
    /// copied whole), so that an enclosing length excludes them as RFC 5354 §2 says.
    pub(crate) fn set_trailing_padding(&mut self, padding: usize) {
        assert!(padding < 4);
        self.last_padding = padding;
    }

    /// Writes `n` zero bytes; `n` is padding, at most 3, so a loop beats a `memset` call.
    #[inline]
    pub(crate) fn zeros(&mut self, n: usize) {
        for _ in 0..n {
            self.buf[self.pos] = 0;
            self.pos += 1;
        }
    }

    /// Writes a TLV: header with a placeholder length, the value from `f`, then the length
    /// patched from what was written (not counting the last nested TLV's padding, RFC 5354
    /// §2), then padding to four bytes. Nothing is measured twice, which keeps the emit of
    /// nested PEs cheap; callers assert the total against `buffer_len()`.
    pub(crate) fn tlv(&mut self, ty: ParameterType, f: impl FnOnce(&mut Self)) {
        let start = self.pos;
        self.u16(ty.0);
        self.u16(0);
        f(self);
        self.patch_length(start + 2, start);
    }

    /// Writes a message: header with a placeholder length, the body, the patched length and
    /// the padding.
    #[inline]
    pub(crate) fn message(&mut self, ty: u8, flags: u8, f: impl FnOnce(&mut Self)) {
        let start = self.pos;
        self.bytes(&[ty, flags, 0, 0]);
        f(self);
        self.patch_length(start + 2, start);
    }

    #[inline]
    fn patch_length(&mut self, at: usize, start: usize) {
        let length = self.pos - start - self.last_padding;
        let field = u16::try_from(length).expect("Repr within caps: length fits 16 bits");
        self.buf[at..at + 2].copy_from_slice(&field.to_be_bytes());
        let padding = pad4(length) - length;
        // The last nested TLV's padding doubles as ours; only a raw value needs more.
        assert!(self.last_padding <= padding);
        self.zeros(padding - self.last_padding);
        self.last_padding = padding;
    }
}

/// Length of a list of TLVs whose unpadded lengths are given: all padded except the last.
pub(crate) fn list_len(lengths: impl Iterator<Item = usize>) -> usize {
    let mut total = 0;
    let mut last_padding = 0;
    for length in lengths {
        total += pad4(length);
        last_padding = pad4(length) - length;
    }
    total - last_padding
}

/// Sets a once-only slot, or fails with `Duplicate` (STYLE §2 `read_once`).
pub(crate) fn set_once<T>(
    slot: &mut Option<T>,
    value: T,
    field: &'static str,
    offset: usize,
) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::new(DecodeErrorKind::Duplicate, field, offset));
    }
    *slot = Some(value);
    Ok(())
}

/// Unwraps a mandatory slot, or fails with `Missing` at `offset` (the end of the container).
pub(crate) fn required<T>(
    slot: Option<T>,
    field: &'static str,
    offset: usize,
) -> Result<T, DecodeError> {
    slot.ok_or(DecodeError::new(DecodeErrorKind::Missing, field, offset))
}

/// Walks the TLVs of `r`, handing each to `f`. `f` returns `Ok(false)` for a parameter it does
/// not take here; that is `Unexpected` for a known type and follows the action bits otherwise.
/// At most `count_max` parameters are walked.
pub(crate) fn walk<'a>(
    r: &mut Reader<'a>,
    count_max: usize,
    mut f: impl FnMut(Tlv<'a>) -> Result<bool, DecodeError>,
) -> Result<(), DecodeError> {
    let mut count = 0usize;
    while let Some(tlv) = r.tlv()? {
        count += 1;
        if count > count_max {
            return Err(DecodeError::new(DecodeErrorKind::TooMany, "Parameters", tlv.offset));
        }
        if f(tlv)? {
            continue;
        }
        if tlv.ty.is_known() {
            return Err(DecodeError::new(DecodeErrorKind::Unexpected, tlv.ty.name(), tlv.offset));
        }
        crate::param::handle_unknown_parameter(&tlv)?;
    }
    Ok(())
}

/// Length of a TLV header: type and length, 16 bits each.
pub(crate) const TLV_HEADER_LEN: usize = 4;
/// Length of the ASAP/ENRP message header: type(8) flags(8) length(16).
pub(crate) const MESSAGE_HEADER_LEN: usize = 4;
