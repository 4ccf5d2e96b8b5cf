//! How long an SMS is: its encoding (GSM 03.38 7-bit, or UCS-2 as soon as one character is
//! outside the GSM alphabet) and how many parts (segments) it is sent in. One GSM part holds 160
//! units, a concatenated part 153 (the rest carries the header); UCS-2: 70 and 67. A character
//! of the GSM extension table (`{ } [ ] ~ \ | ^ €` and form feed) takes two units. Characters
//! outside the Basic Multilingual Plane take two UCS-2 units.

/// The GSM 03.38 basic character set.
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u{1b}ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The GSM 03.38 extension table (each preceded by an escape: two units).
const GSM_EXTENDED: &str = "\u{c}^{}\\[~]|€";

/// The encoding an SMS needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

/// An SMS's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmsLength {
    pub encoding: Encoding,
    /// Units in the encoding (septets, or UTF-16 code units).
    pub units: usize,
    pub segments: usize,
}

/// Measures `text`.
pub fn measure(text: &str) -> SmsLength {
    let gsm_units: Option<usize> = text
        .chars()
        .map(|c| {
            if GSM_BASIC.contains(c) {
                Some(1)
            } else if GSM_EXTENDED.contains(c) {
                Some(2)
            } else {
                None
            }
        })
        .sum();
    let (encoding, units, single, part) = match gsm_units {
        Some(units) => (Encoding::Gsm7, units, 160, 153),
        None => (Encoding::Ucs2, text.encode_utf16().count(), 70, 67),
    };
    let segments = if units == 0 {
        0
    } else if units <= single {
        1
    } else {
        units.div_ceil(part)
    };
    SmsLength {
        encoding,
        units,
        segments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_latin_text_is_gsm_and_splits_at_160_then_153() {
        let one = measure(&"a".repeat(160));
        assert_eq!(
            (one.encoding, one.units, one.segments),
            (Encoding::Gsm7, 160, 1)
        );
        assert_eq!(measure(&"a".repeat(161)).segments, 2);
        assert_eq!(measure(&"a".repeat(306)).segments, 2);
        assert_eq!(measure(&"a".repeat(307)).segments, 3);
        assert_eq!(measure("").segments, 0);
    }

    #[test]
    fn extended_characters_count_two() {
        let text = "€".repeat(80);
        let length = measure(&text);
        assert_eq!(
            (length.encoding, length.units, length.segments),
            (Encoding::Gsm7, 160, 1)
        );
        assert_eq!(measure(&format!("{text}a")).segments, 2);
    }

    #[test]
    fn french_accents_in_the_gsm_alphabet_stay_gsm_others_switch_to_ucs2() {
        assert_eq!(
            measure("Votre demande a été reçue à 10h").encoding,
            Encoding::Ucs2
        );
        assert_eq!(
            measure("Votre demande a été traitée").encoding,
            Encoding::Gsm7
        );
    }

    #[test]
    fn arabic_and_tifinagh_are_ucs2_70_then_67() {
        let arabic = measure(&"ب".repeat(70));
        assert_eq!((arabic.encoding, arabic.segments), (Encoding::Ucs2, 1));
        assert_eq!(measure(&"ب".repeat(71)).segments, 2);
        assert_eq!(measure(&"ⵜ".repeat(134)).segments, 2);
        assert_eq!(measure(&"ⵜ".repeat(135)).segments, 3);
    }
}
