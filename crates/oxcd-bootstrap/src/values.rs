//! Scalar value syntax as Go's `strconv` and `time` packages accept it.

use std::time::Duration;

/// Why a number did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumError {
    Syntax,
    Range,
}

impl NumError {
    /// The Go `flag` package's wording.
    pub fn flag_text(self) -> &'static str {
        match self {
            NumError::Syntax => "parse error",
            NumError::Range => "value out of range",
        }
    }

    /// The `strconv.ParseUint` wording (used by etcd's own uint32 flag type).
    pub fn strconv_text(self, input: &str) -> String {
        match self {
            NumError::Syntax => format!("strconv.ParseUint: parsing {input:?}: invalid syntax"),
            NumError::Range => format!("strconv.ParseUint: parsing {input:?}: value out of range"),
        }
    }
}

/// `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `strconv.ParseUint(s, 0, bits)`: decimal, `0x`, `0o`, `0b` or a leading-`0` octal number.
pub fn parse_uint(s: &str, bits: u32) -> Result<u64, NumError> {
    if s.is_empty() {
        return Err(NumError::Syntax);
    }
    let b = s.as_bytes();
    let (radix, digits, prefixed) = if b[0] == b'0' && s.len() > 1 {
        match b[1] {
            b'x' | b'X' => (16, &s[2..], true),
            b'o' | b'O' => (8, &s[2..], true),
            b'b' | b'B' => (2, &s[2..], true),
            _ => (8, &s[1..], true),
        }
    } else {
        (10, s, false)
    };
    if digits.is_empty() {
        return Err(NumError::Syntax);
    }
    // underscores may only separate digits, and only after a base prefix
    if digits.contains('_') && (!prefixed || digits.ends_with('_') || digits.contains("__")) {
        return Err(NumError::Syntax);
    }
    let max: u64 = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let mut v: u64 = 0;
    let mut range = false;
    for c in digits.chars() {
        if c == '_' {
            continue;
        }
        let d = c.to_digit(radix).ok_or(NumError::Syntax)? as u64;
        match v.checked_mul(radix as u64).and_then(|x| x.checked_add(d)) {
            Some(x) if x <= max => v = x,
            _ => range = true,
        }
    }
    if range {
        return Err(NumError::Range);
    }
    Ok(v)
}

/// `strconv.ParseInt(s, 0, bits)`.
pub fn parse_int(s: &str, bits: u32) -> Result<i64, NumError> {
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let u = parse_uint(rest, 64)?;
    let cutoff = 1u64 << (bits.min(64) - 1);
    if !neg && u >= cutoff {
        return Err(NumError::Range);
    }
    if neg && u > cutoff {
        return Err(NumError::Range);
    }
    Ok(if neg {
        (u as i64).wrapping_neg()
    } else {
        u as i64
    })
}

/// `time.ParseDuration` for non-negative values (`300ms`, `1h30m`, `1.5s`, `0`).
/// Negative durations are reported as a syntax error.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut rest = s;
    if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    } else if rest.starts_with('-') {
        return if &rest[1..] == "0" {
            Some(Duration::ZERO)
        } else {
            None
        };
    }
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_end];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return None;
        }
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let scale: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        let n: f64 = num.parse().ok()?;
        total += n * scale;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    Some(Duration::from_nanos(total.round() as u64))
}

/// Formats a duration like Go's `time.Duration.String()` (`1h0m0s`, `100ms`, `0s`).
pub fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_string();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", trim_frac(ns as f64 / 1e3));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", trim_frac(ns as f64 / 1e6));
    }
    let total_s = ns / 1_000_000_000;
    let frac_ns = ns % 1_000_000_000;
    let h = total_s / 3600;
    let m = (total_s % 3600) / 60;
    let s = total_s % 60;
    let sec = if frac_ns == 0 {
        format!("{s}s")
    } else {
        let f = format!("{:09}", frac_ns);
        format!("{s}.{}s", f.trim_end_matches('0'))
    };
    if h > 0 {
        format!("{h}h{m}m{sec}")
    } else if m > 0 {
        format!("{m}m{sec}")
    } else {
        sec
    }
}

fn trim_frac(v: f64) -> String {
    let s = format!("{v:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_uint("100", 64), Ok(100));
        assert_eq!(parse_uint("0x10", 64), Ok(16));
        assert_eq!(parse_uint("010", 64), Ok(8));
        assert_eq!(parse_uint("0", 64), Ok(0));
        assert_eq!(parse_uint("x", 64), Err(NumError::Syntax));
        assert_eq!(parse_uint("-1", 64), Err(NumError::Syntax));
        assert_eq!(parse_uint("99999999999999999999", 64), Err(NumError::Range));
        assert_eq!(parse_uint("4294967296", 32), Err(NumError::Range));
        assert_eq!(parse_int("-5", 64), Ok(-5));
        assert_eq!(parse_int("9223372036854775808", 64), Err(NumError::Range));
        assert_eq!(parse_int("-9223372036854775808", 64), Ok(i64::MIN));
        assert_eq!(parse_bool("T"), Some(true));
        assert_eq!(parse_bool("yes"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("100ms"), Some(Duration::from_millis(100)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("x"), None);
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h0m0s");
        assert_eq!(format_duration(Duration::from_millis(100)), "100ms");
        assert_eq!(format_duration(Duration::from_secs(1)), "1s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }
}
