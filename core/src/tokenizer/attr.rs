//! Per-token attributes, as llama.cpp derives them from `tokenizer.ggml.token_type`.

/// A set of attribute bits (llama.cpp's `llama_token_attr` values, so the rules that
/// combine them read the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Attr(u16);

impl Attr {
    pub const UNDEFINED: Attr = Attr(0);
    pub const UNKNOWN: Attr = Attr(1 << 0);
    pub const UNUSED: Attr = Attr(1 << 1);
    pub const NORMAL: Attr = Attr(1 << 2);
    pub const CONTROL: Attr = Attr(1 << 3);
    pub const USER_DEFINED: Attr = Attr(1 << 4);
    pub const BYTE: Attr = Attr(1 << 5);
    /// Strip ASCII whitespace left of this special token when it is matched in text.
    pub const LSTRIP: Attr = Attr(1 << 7);
    /// Strip ASCII whitespace right of this special token when it is matched in text.
    pub const RSTRIP: Attr = Attr(1 << 8);

    /// The attribute a GGUF token type id stands for (unknown ids count as undefined).
    pub fn from_token_type(token_type: i64) -> Attr {
        match token_type {
            1 => Attr::NORMAL,
            2 => Attr::UNKNOWN,
            3 => Attr::CONTROL,
            4 => Attr::USER_DEFINED,
            5 => Attr::UNUSED,
            6 => Attr::BYTE,
            _ => Attr::UNDEFINED,
        }
    }

    /// True when any bit of `other` is set in `self`.
    pub fn any(self, other: Attr) -> bool {
        self.0 & other.0 != 0
    }

    pub fn with(self, other: Attr) -> Attr {
        Attr(self.0 | other.0)
    }

    pub fn without(self, other: Attr) -> Attr {
        Attr(self.0 & !other.0)
    }
}

impl std::ops::BitOr for Attr {
    type Output = Attr;

    fn bitor(self, rhs: Attr) -> Attr {
        self.with(rhs)
    }
}
