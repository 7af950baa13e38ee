//! A message's fallback links, rare (only where a fallback was made), so
//! boxed when set: 8 bytes in every message instead of 32. Encoded as the
//! two options they replace, in their order, so checkpoints keep their
//! layout.

use bincode::de::{BorrowDecoder, Decoder};
use bincode::enc::Encoder;
use bincode::error::{DecodeError, EncodeError};
use bincode::{BorrowDecode, Decode, Encode};

use crate::model::MessageId;

/// The fallback made when this message failed (forward), and the message
/// this one is the fallback of (back).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Links(Option<Box<[Option<MessageId>; 2]>>);

impl Links {
    /// Links `forward` and `back` (none: nothing boxed).
    pub fn new(forward: Option<MessageId>, back: Option<MessageId>) -> Links {
        match (forward, back) {
            (None, None) => Links(None),
            pair => Links(Some(Box::new([pair.0, pair.1]))),
        }
    }

    /// The fallback made when this message failed.
    pub fn forward(&self) -> Option<MessageId> {
        self.0.as_ref().and_then(|l| l[0])
    }

    /// The message this one is the fallback of.
    pub fn back(&self) -> Option<MessageId> {
        self.0.as_ref().and_then(|l| l[1])
    }

    /// Records the fallback made when this message failed.
    pub fn set_forward(&mut self, forward: MessageId) {
        *self = Links::new(Some(forward), self.back());
    }
}

impl Encode for Links {
    fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), EncodeError> {
        self.forward().encode(encoder)?;
        self.back().encode(encoder)
    }
}

impl<Context> Decode<Context> for Links {
    fn decode<D: Decoder<Context = Context>>(decoder: &mut D) -> Result<Self, DecodeError> {
        let forward = Option::<MessageId>::decode(decoder)?;
        let back = Option::<MessageId>::decode(decoder)?;
        Ok(Links::new(forward, back))
    }
}

impl<'de, Context> BorrowDecode<'de, Context> for Links {
    fn borrow_decode<D: BorrowDecoder<'de, Context = Context>>(
        decoder: &mut D,
    ) -> Result<Self, DecodeError> {
        Decode::decode(decoder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_encode_as_the_two_options_they_replace() {
        let config = bincode::config::standard();
        let (a, b) = (MessageId::new(1, 7), MessageId::new(0, 9));
        for (forward, back) in [
            (None, None),
            (Some(a), None),
            (None, Some(b)),
            (Some(a), Some(b)),
        ] {
            let links = Links::new(forward, back);
            let old = bincode::encode_to_vec((forward, back), config).expect("encode");
            assert_eq!(bincode::encode_to_vec(&links, config).expect("encode"), old);
            let (decoded, _): (Links, usize) =
                bincode::decode_from_slice(&old, config).expect("decode");
            assert_eq!((decoded.forward(), decoded.back()), (forward, back));
        }
        assert_eq!(std::mem::size_of::<Links>(), 8);
        let mut l = Links::new(None, Some(b));
        l.set_forward(a);
        assert_eq!((l.forward(), l.back()), (Some(a), Some(b)));
    }
}
