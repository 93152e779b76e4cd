//! Money: cents inside, decimal text ("1234.56") at the edge.

use crate::error::{AppError, AppResult};

/// Money as text ("1234.56") to cents, refusing anything else.
pub fn parse_money(field: &str, s: &str) -> AppResult<i64> {
    let bad = || AppError::bad_input(field, "must be an amount like 1250.00 (at most 2 decimals, not negative)");
    let s = s.trim();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty()
        || whole.len() > 12
        || frac.len() > 2
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let frac: i64 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
    Ok(whole * 100 + frac)
}

pub fn format_money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, (cents % 100).abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_parses_strictly() {
        assert_eq!(parse_money("m", "1250").unwrap(), 125_000);
        assert_eq!(parse_money("m", "1250.5").unwrap(), 125_050);
        assert_eq!(parse_money("m", "0.05").unwrap(), 5);
        for bad in ["", "-1", "1.234", "1e5", "12,00", ".5", "1234567890123"] {
            assert!(parse_money("m", bad).is_err(), "{bad}");
        }
        assert_eq!(format_money(125_050), "1250.50");
    }
}
