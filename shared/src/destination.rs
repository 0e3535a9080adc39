//! Which numbers a booking may dial. A leaked API key must not be able to run up
//! premium-rate or international charges (toll fraud), so a number must fall under an
//! allowed prefix (`ALLOWED_DESTINATIONS`, default `+1`) and outside the ranges that
//! are never a restaurant's line:
//!
//! - NANP (`+1`): exactly ten digits, area code and exchange starting 2–9; refused are
//!   premium rate (area code 900, exchange 976), toll-free and its reserve (`8NN`:
//!   800, 822, 833, 844, 855, 866, 877, 888), personal and carrier codes (`5NN`,
//!   600, 622, 700, 710), N11 codes (211…911, as area code or exchange), exchange 555
//!   (directory assistance and the 555-01xx numbers reserved for fiction), and area
//!   codes `N9X` (reserved). Area codes of the Caribbean and Atlantic countries in the
//!   NANP (876 Jamaica, 809 Dominican Republic, …) are billed as international calls and
//!   are the usual target of "one ring" fraud: allowed only when a prefix names them
//!   (`+1876`), never by `+1` alone.
//! - UK (`+44`, when allowed): premium rate (`09`), revenue-sharing service numbers
//!   (`084`, `087`), personal numbers (`070`), pagers (`076`) and directory enquiries
//!   (`118`) are refused.
//! - Other countries: the prefix is the operator's decision; no ranges are known here.

/// The allow-list of a fresh deployment: the NANP's US and Canadian geographic numbers.
pub const DEFAULT_ALLOWED: &str = "+1";

/// NANP area codes outside the US and Canada, billed as international calls.
const NANP_INTERNATIONAL: [&str; 21] = [
    "242", "246", "264", "268", "284", "345", "441", "473", "649", "658", "664", "721", "758", "767", "784", "809",
    "829", "849", "868", "869", "876",
];

/// Why a number may not be dialed; shown to the user after `restaurant.phone`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    #[error("is outside the countries and ranges this deployment calls ({allowed})")]
    NotAllowed { allowed: String },
    #[error("is a premium-rate number ({0}); Concierge never calls those")]
    PremiumRate(&'static str),
    #[error("is a {0}, not a restaurant's line")]
    Special(&'static str),
    #[error("is not a valid number for its country ({0})")]
    Invalid(&'static str),
}

/// A parsed `ALLOWED_DESTINATIONS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destinations {
    /// `+` and digits, e.g. `+1`, `+44`, `+1876`.
    prefixes: Vec<String>,
}

impl Default for Destinations {
    fn default() -> Destinations {
        Destinations { prefixes: vec![DEFAULT_ALLOWED.to_owned()] }
    }
}

/// Why an allowed-destinations list cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationListError {
    #[error("'{0}' is not a '+' followed by a country code (and optionally more digits)")]
    BadPrefix(String),
    #[error("no destination is allowed")]
    Empty,
}

impl Destinations {
    /// Comma-separated prefixes, each `+` and 1 to 15 digits.
    pub fn parse(list: &str) -> Result<Destinations, DestinationListError> {
        let mut prefixes = Vec::new();
        for prefix in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let digits = prefix.strip_prefix('+').unwrap_or_default();
            if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(DestinationListError::BadPrefix(prefix.to_owned()));
            }
            prefixes.push(prefix.to_owned());
        }
        if prefixes.is_empty() {
            return Err(DestinationListError::Empty);
        }
        Ok(Destinations { prefixes })
    }

    /// Checks an E.164 number (already known to be well formed).
    pub fn check(&self, number: &str) -> Result<(), DestinationError> {
        let covering: Vec<&str> =
            self.prefixes.iter().map(String::as_str).filter(|prefix| number.starts_with(prefix)).collect();
        if covering.is_empty() {
            return Err(self.not_allowed());
        }
        if let Some(national) = number.strip_prefix("+1") {
            check_nanp(national)?;
            let area = &national[..3];
            // `+1` alone does not reach the Caribbean; a prefix naming the area code does.
            // (At least `+1NPA`: a shorter prefix such as `+18` names no area code.)
            if NANP_INTERNATIONAL.contains(&area) && !covering.iter().any(|p| p.len() >= 5) {
                return Err(self.not_allowed());
            }
        } else if let Some(national) = number.strip_prefix("+44") {
            check_uk(national)?;
        }
        Ok(())
    }

    fn not_allowed(&self) -> DestinationError {
        DestinationError::NotAllowed { allowed: self.prefixes.join(", ") }
    }
}

fn check_nanp(national: &str) -> Result<(), DestinationError> {
    let digits = national.as_bytes();
    let well_formed = digits.len() == 10 && digits.iter().all(u8::is_ascii_digit);
    if !well_formed || !(b'2'..=b'9').contains(&digits[0]) || !(b'2'..=b'9').contains(&digits[3]) {
        return Err(DestinationError::Invalid("NANP numbers are +1, a 3-digit area code and 7 digits"));
    }
    let (area, exchange) = (&national[..3], &national[3..6]);
    let n11 = |code: &str| code.ends_with("11");
    let repeated = |code: &str| code.as_bytes()[1] == code.as_bytes()[2];
    if area == "900" || exchange == "976" {
        return Err(DestinationError::PremiumRate("NANP 900 / 976"));
    }
    if area.starts_with('8') && repeated(area) {
        return Err(DestinationError::Special("toll-free number"));
    }
    if (area.starts_with('5') && repeated(area)) || ["600", "622", "700", "710"].contains(&area) {
        return Err(DestinationError::Special("non-geographic service number"));
    }
    if n11(area) || n11(exchange) {
        return Err(DestinationError::Special("N11 service code"));
    }
    if exchange == "555" {
        return Err(DestinationError::Special("directory or fictional 555 number"));
    }
    if area.as_bytes()[1] == b'9' {
        return Err(DestinationError::Invalid("area codes N9X are not assigned"));
    }
    Ok(())
}

fn check_uk(national: &str) -> Result<(), DestinationError> {
    if !(9..=10).contains(&national.len()) {
        return Err(DestinationError::Invalid("UK numbers are +44 and 9 or 10 digits"));
    }
    if national.starts_with('9') {
        return Err(DestinationError::PremiumRate("UK 09"));
    }
    if national.starts_with("84") || national.starts_with("87") {
        return Err(DestinationError::PremiumRate("UK 084 / 087 revenue-sharing"));
    }
    if national.starts_with("70") || national.starts_with("76") {
        return Err(DestinationError::Special("UK personal or pager number"));
    }
    if national.starts_with("118") {
        return Err(DestinationError::Special("UK directory enquiries number"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_allows_us_and_canadian_geographic_numbers_only() {
        let default = Destinations::default();
        for ok in ["+15105485525", "+12129624321", "+14168691234", "+16045561000", "+17875561000"] {
            assert_eq!(default.check(ok), Ok(()), "{ok}");
        }
        let refused: &[(&str, &str)] = &[
            ("+19005551234", "premium"),
            ("+19002001234", "premium"),
            ("+12129761234", "premium"),
            ("+18005551234", "special"),
            ("+18882001234", "special"),
            ("+18772001234", "special"),
            ("+18662001234", "special"),
            ("+18552001234", "special"),
            ("+18442001234", "special"),
            ("+18332001234", "special"),
            ("+15005550001", "special"),
            ("+17002001234", "special"),
            ("+19112001234", "special"),
            ("+15104111234", "special"),
            ("+15105550123", "special"),
            ("+15195551234", "special"),
            ("+12921234567", "invalid"),
            ("+1510548552", "invalid"),
            ("+151054855250", "invalid"),
            ("+10105485525", "invalid"),
            ("+15101485525", "invalid"),
            ("+1510548552é", "invalid"),
            ("+121250é678", "invalid"),
            ("+18762001234", "not_allowed"),
            ("+18092001234", "not_allowed"),
            ("+14732001234", "not_allowed"),
            ("+442079460000", "not_allowed"),
            ("+882123456789", "not_allowed"),
        ];
        for (number, expected) in refused {
            let error = default.check(number).expect_err(number);
            let kind = match error {
                DestinationError::PremiumRate(_) => "premium",
                DestinationError::Special(_) => "special",
                DestinationError::Invalid(_) => "invalid",
                DestinationError::NotAllowed { .. } => "not_allowed",
            };
            assert_eq!(&kind, expected, "{number}: {error:?}");
        }
    }

    #[test]
    fn configured_prefixes_extend_and_narrow_the_list() {
        let list = Destinations::parse("+1876, +44 ,+1510").unwrap();
        assert_eq!(list.check("+18762001234"), Ok(()), "named explicitly");
        assert_eq!(list.check("+15105485525"), Ok(()));
        assert!(matches!(list.check("+12129624321"), Err(DestinationError::NotAllowed { .. })), "only 510 of +1");
        assert!(matches!(list.check("+19005551234"), Err(DestinationError::NotAllowed { .. })));
        assert_eq!(list.check("+442079460000"), Ok(()));
        for number in ["+449098790000", "+448712345678", "+448451234567", "+447012345678", "+447612345678"] {
            assert!(matches!(list.check(number), Err(DestinationError::PremiumRate(_) | DestinationError::Special(_))));
        }
        assert!(list.check("+44118118").is_err());
        let with_one = Destinations::parse("+1,+1876").unwrap();
        assert_eq!(with_one.check("+18762001234"), Ok(()));
        for bad in ["", " , ", "1", "+", "+1a", "+1234567890123456"] {
            assert!(Destinations::parse(bad).is_err(), "{bad:?}");
        }
    }
}
