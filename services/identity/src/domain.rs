//! Identity's domain types: values that are valid by construction (parse, don't validate).

use jamaa_proto::r#type::v1::{Language, LocalizedText};

/// A normalised e-mail address (trimmed, lower-case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, String> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err("is required".into());
        }
        if email.len() > 254 {
            return Err("must be at most 254 characters".into());
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err("must be an e-mail address like name@example.ma".into());
        };
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@');
        if local.is_empty() || !domain_ok || email.chars().any(char::is_whitespace) {
            return Err("must be an e-mail address like name@example.ma".into());
        }
        Ok(Email(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A mobile phone number in E.164 form: `+`, a country code, the number; 8 to 15 digits in all,
/// e.g. `+212612345678`. Parsed from Moroccan mobiles in national form (`0612345678`,
/// `06 12 34 56 78`; 06 and 07) or international form (`+212 6 12 34 56 78`, `00212612345678`,
/// even `+212 (0)6…`), and from any number in international form. Moroccan numbers must be
/// mobiles (a code is sent to them by SMS). Personal data: its `Debug` form hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// The fewest and most digits of an E.164 number, country code included.
    const DIGITS: std::ops::RangeInclusive<usize> = 8..=15;

    pub fn parse(raw: &str) -> Result<PhoneNumber, String> {
        const SHAPE: &str = "must be a mobile phone number: 06… or 07… (Morocco, 10 digits), or \
                             +<country code><number>, e.g. +212612345678";
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("is required".into());
        }
        if raw.chars().count() > 32 {
            return Err(SHAPE.into());
        }
        let (plus, rest) = match raw.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, raw),
        };
        let mut digits = String::with_capacity(rest.len());
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                // How people group digits when they write a number.
                ' ' | '\u{a0}' | '-' | '.' | '(' | ')' => {}
                _ => return Err(SHAPE.into()),
            }
        }
        // `00` is the international prefix dialled from Morocco (and most countries).
        let international = if plus {
            Some(digits.as_str())
        } else {
            digits.strip_prefix("00")
        };
        let e164 = match international {
            Some(number) => match number.strip_prefix("212") {
                // The national trunk 0 is often kept after the country code: +212 (0)6….
                Some(national) if national.len() == 10 && national.starts_with('0') => {
                    moroccan_mobile(&national[1..])?
                }
                Some(national) => moroccan_mobile(national)?,
                None => number.to_string(),
            },
            None => match digits.strip_prefix('0') {
                Some(national) => moroccan_mobile(national)?,
                None => return Err(SHAPE.into()),
            },
        };
        if !Self::DIGITS.contains(&e164.len()) || e164.starts_with('0') {
            return Err(SHAPE.into());
        }
        Ok(PhoneNumber(format!("+{e164}")))
    }

    /// The number in E.164 form, e.g. `+212612345678`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `212` and the national number (without its trunk 0) of a Moroccan mobile: 9 digits, 6 or 7
/// first.
fn moroccan_mobile(national: &str) -> Result<String, String> {
    if national.len() == 9 && (national.starts_with('6') || national.starts_with('7')) {
        Ok(format!("212{national}"))
    } else {
        Err(
            "must be a Moroccan mobile number (06 or 07 then 8 digits, e.g. 0612345678) or \
             +<country code><number>"
                .into(),
        )
    }
}

impl std::fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PhoneNumber([REDACTED])")
    }
}

/// A user id: a UUID.
pub fn parse_user_id(raw: &str) -> Result<uuid::Uuid, String> {
    uuid::Uuid::parse_str(raw.trim()).map_err(|_| "must be a user id (a UUID)".to_string())
}

/// Whether `code` is six ASCII digits, the shape of every one-time code identity sends.
pub fn is_six_digits(code: &str) -> bool {
    code.len() == 6 && code.chars().all(|c| c.is_ascii_digit())
}

/// A password good enough to hash (OWASP ASVS 2.1): 8 to 128 characters, any characters, no
/// composition rules, and not one of the common passwords shipped in
/// `data/common-passwords.txt` (compared lower-cased).
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 128;

    pub fn parse(raw: &str) -> Result<Password, String> {
        let chars = raw.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(format!("must have at least {} characters", Self::MIN_CHARS));
        }
        if chars > Self::MAX_CHARS {
            return Err(format!("must have at most {} characters", Self::MAX_CHARS));
        }
        if is_common_password(raw) {
            return Err(
                "is one of the most common passwords, which attackers try first; choose another"
                    .into(),
            );
        }
        Ok(Password(raw.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The common passwords, lower-cased.
static COMMON_PASSWORDS: std::sync::LazyLock<std::collections::HashSet<&'static str>> =
    std::sync::LazyLock::new(|| {
        include_str!("../data/common-passwords.txt")
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect()
    });

fn is_common_password(password: &str) -> bool {
    COMMON_PASSWORDS.contains(password.to_lowercase().as_str())
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

/// A commune code: 2 to 6 upper-case ASCII letters, e.g. `BNM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommuneCode(String);

impl CommuneCode {
    pub fn parse(raw: &str) -> Result<CommuneCode, String> {
        let code = raw.trim();
        if (2..=6).contains(&code.len()) && code.chars().all(|c| c.is_ascii_uppercase()) {
            Ok(CommuneCode(code.to_string()))
        } else {
            Err("must be 2 to 6 upper-case letters, e.g. BNM".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How a person is addressed: 1 to 100 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<DisplayName, String> {
        let name = raw.trim();
        match name.chars().count() {
            0 => Err("is required".into()),
            n if n > 100 => Err("must have at most 100 characters".into()),
            _ if name.chars().any(char::is_control) => {
                Err("must not contain control characters".into())
            }
            _ => Ok(DisplayName(name.to_string())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A language from the wire: unspecified means Arabic; unknown numbers are refused.
pub fn parse_language(raw: i32) -> Result<Language, String> {
    Language::try_from(raw)
        .map_err(|_| "is not a known language".to_string())
        .map(|language| {
            if language == Language::Unspecified {
                Language::Ar
            } else {
                language
            }
        })
}

/// A commune's name: at least Arabic or French, each at most 200 characters.
pub fn parse_commune_name(name: Option<&LocalizedText>) -> Result<LocalizedText, String> {
    let Some(name) = name else {
        return Err("is required (at least in Arabic or French)".into());
    };
    let trimmed = LocalizedText {
        ar: name.ar.trim().to_string(),
        fr: name.fr.trim().to_string(),
        en: name.en.trim().to_string(),
        tzm: name.tzm.trim().to_string(),
    };
    if trimmed.ar.is_empty() && trimmed.fr.is_empty() {
        return Err("is required (at least in Arabic or French)".into());
    }
    if [&trimmed.ar, &trimmed.fr, &trimmed.en, &trimmed.tzm]
        .iter()
        .any(|text| text.chars().count() > 200)
    {
        return Err("must have at most 200 characters in each language".into());
    }
    Ok(trimmed)
}

/// The signatures a petition needs under organic law 113-14 (art. 125): 100 in communes under
/// 35,000 inhabitants, 200 in others, 400 in communes with arrondissements. A positive
/// `override_threshold` replaces the default.
pub fn petition_threshold(
    population: i64,
    has_arrondissements: bool,
    override_threshold: i32,
) -> i32 {
    if override_threshold > 0 {
        override_threshold
    } else if has_arrondissements {
        400
    } else if population < 35_000 {
        100
    } else {
        200
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Amina@Example.MA ").map(|e| e.0),
            Ok("amina@example.ma".into())
        );
        for bad in [
            "",
            "amina",
            "amina@",
            "@example.ma",
            "amina@example",
            "a b@example.ma",
            "a@.ma",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn moroccan_mobiles_in_every_usual_form_become_e164() {
        for (raw, e164) in [
            ("0612345678", "+212612345678"),
            ("06 12 34 56 78", "+212612345678"),
            ("06-12-34-56-78", "+212612345678"),
            ("06.12.34.56.78", "+212612345678"),
            (" 0712345678 ", "+212712345678"),
            ("+212 6 12 34 56 78", "+212612345678"),
            ("+212612345678", "+212612345678"),
            ("00212612345678", "+212612345678"),
            ("00 212 7 12 34 56 78", "+212712345678"),
            ("+212 (0)6 12 34 56 78", "+212612345678"),
            ("+2120612345678", "+212612345678"),
        ] {
            assert_eq!(
                PhoneNumber::parse(raw).map(|number| number.as_str().to_string()),
                Ok(e164.to_string()),
                "{raw}"
            );
        }
    }

    #[test]
    fn numbers_of_other_countries_are_taken_in_international_form() {
        for (raw, e164) in [
            ("+33 6 12 34 56 78", "+33612345678"),
            ("0033612345678", "+33612345678"),
            ("+1 (415) 555-2671", "+14155552671"),
            ("+4915123456789", "+4915123456789"),
            ("+12345678", "+12345678"),
            ("+123456789012345", "+123456789012345"),
        ] {
            assert_eq!(
                PhoneNumber::parse(raw).map(|number| number.as_str().to_string()),
                Ok(e164.to_string()),
                "{raw}"
            );
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "   ",
            // Moroccan landlines and other prefixes receive no SMS.
            "0523456789",
            "+212523456789",
            "0812345678",
            // Too short, too long, no country.
            "061234567",
            "06123456789",
            "612345678",
            "+212 6123 4567",
            "+1234567",
            "+1234567890123456",
            "+0612345678",
            // Letters, a second plus, an extension, nothing but a plus.
            "06 12 34 56 7a",
            "+212+612345678",
            "0612345678 ext 12",
            "+",
            "+212 6 12 34 56 78 90 12 34 56 78 90 12",
        ] {
            assert!(
                PhoneNumber::parse(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
        assert_eq!(PhoneNumber::parse(""), Err("is required".to_string()));
    }

    #[test]
    fn phone_numbers_do_not_print() {
        let number = PhoneNumber::parse("0612345678").expect("valid");
        let printed = format!("{number:?}");
        assert!(!printed.contains("612345678"), "{printed}");
    }

    #[test]
    fn passwords_have_a_minimum_length_and_do_not_print() {
        assert!(Password::parse("short77").is_err());
        assert!(Password::parse("eight ch").is_ok(), "8 characters suffice");
        assert!(Password::parse(&"x".repeat(129)).is_err());
        assert!(
            Password::parse(&"é".repeat(128)).is_ok(),
            "characters, not bytes"
        );
        let password = Password::parse("long enough password").expect("valid");
        assert!(!format!("{password:?}").contains("long"));
    }

    #[test]
    fn common_passwords_are_refused_whatever_their_case() {
        assert!(COMMON_PASSWORDS.len() >= 10_000);
        for common in [
            "password",
            "12345678",
            "Password1",
            "QWERTYUIOP",
            "iloveyou",
            "azerty123",
        ] {
            let refused = Password::parse(common).err().unwrap_or_default();
            assert!(refused.contains("common"), "{common}: {refused}");
        }
        assert!(Password::parse("correct horse battery staple").is_ok());
    }

    #[test]
    fn commune_codes_are_upper_case_letters() {
        assert!(CommuneCode::parse("BNM").is_ok());
        for bad in ["B", "bnm", "BNM1", "TOOLONGX", ""] {
            assert!(CommuneCode::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn thresholds_follow_the_law() {
        assert_eq!(petition_threshold(20_000, false, 0), 100);
        assert_eq!(petition_threshold(35_000, false, 0), 200);
        assert_eq!(petition_threshold(1_000_000, true, 0), 400);
        assert_eq!(petition_threshold(1_000_000, true, 3), 3);
    }
}
