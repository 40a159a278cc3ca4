//! Evaluation: a policy matches when every key and every `$or` group matches; a key matches when any
//! of its rules accepts any of the key's values (or, for `exists`, the key's presence).

use crate::number::Num;
use crate::pattern::{Excluded, Literal, Pattern};
use crate::policy::Expr;
use crate::values::Found;

/// Whether `expr` matches, looking keys up with `lookup`.
pub(crate) fn expr(expr: &Expr, lookup: &dyn Fn(&[String]) -> Found) -> bool {
    expr.leaves.iter().all(|leaf| {
        let found = lookup(&leaf.path);
        leaf.patterns.iter().any(|pattern| pattern_matches(pattern, &found))
    }) && expr
        .ors
        .iter()
        .all(|group| group.iter().any(|branch| self::expr(branch, lookup)))
}

fn pattern_matches(pattern: &Pattern, found: &Found) -> bool {
    match pattern {
        Pattern::Exists(wanted) => found.exists == *wanted,
        _ => found.values.iter().any(|value| accepts(pattern, value)),
    }
}

/// Whether one rule accepts one value.
fn accepts(pattern: &Pattern, value: &Literal) -> bool {
    match (pattern, value) {
        (Pattern::Exact(literal), value) => literal == value,
        (Pattern::Prefix(prefix), Literal::Str(s)) => s.starts_with(prefix.as_str()),
        (Pattern::Suffix(suffix), Literal::Str(s)) => s.ends_with(suffix.as_str()),
        (Pattern::EqualsIgnoreCase(text), Literal::Str(s)) => s.to_lowercase() == text.to_lowercase(),
        (Pattern::AnythingBut(excluded), value) => not_excluded(excluded, value),
        (Pattern::Numeric(terms), Literal::Num(Some(n))) => in_range(terms, *n),
        (Pattern::Cidr(cidr), Literal::Str(s)) => cidr.contains_text(s),
        _ => false,
    }
}

/// `anything-but`: a value not listed; for prefix/suffix, a string without it. A `null` is no
/// value to compare, so it is never "anything else".
fn not_excluded(excluded: &Excluded, value: &Literal) -> bool {
    match (excluded, value) {
        (_, Literal::Null) => false,
        (Excluded::Values(listed), value) => !listed.contains(value),
        (Excluded::Prefix(prefix), Literal::Str(s)) => !s.starts_with(prefix.as_str()),
        (Excluded::Suffix(suffix), Literal::Str(s)) => !s.ends_with(suffix.as_str()),
        _ => false,
    }
}

fn in_range(terms: &[(crate::number::Op, Num)], value: Num) -> bool {
    terms.iter().all(|(op, operand)| op.holds(value, *operand))
}
