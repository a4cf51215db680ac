//! [`KeyHasher`]: FNV-1a with 128 bits over length-prefixed parts, the stable hash behind OTLP's derived dedupe
//! keys. Its state is a plain value, so the walker hashes a resource and a scope once and every record of the scope
//! continues from a copy of that state (the same key as hashing all the parts anew, at a fraction of the cost).

/// FNV-1a, 128 bits, over length-prefixed parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct KeyHasher {
    state: u128,
}

impl KeyHasher {
    const OFFSET_BASIS: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;

    pub(super) fn new() -> KeyHasher {
        KeyHasher {
            state: Self::OFFSET_BASIS,
        }
    }

    pub(super) fn bytes(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.state ^= u128::from(*byte);
            self.state = self.state.wrapping_mul(Self::PRIME);
        }
    }

    /// Hashes one part, prefixed by its length so that parts cannot run into each other.
    pub(super) fn part(&mut self, bytes: &[u8]) {
        self.bytes(&(bytes.len() as u64).to_le_bytes());
        self.bytes(bytes);
    }

    pub(super) fn finish_hex(&self) -> String {
        format!("{:032x}", self.state)
    }
}
