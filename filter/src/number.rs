//! SNS's numbers: -1e9 to 1e9 with five digits after the decimal point (constraints page), held as
//! an integer count of 1e-5 so that equality and order are exact at that precision.

/// The largest magnitude SNS accepts in numeric matching.
pub(crate) const LIMIT: f64 = 1e9;
/// 10^5: SNS keeps five digits after the decimal point.
const SCALE: f64 = 100_000.0;

/// A number at SNS precision: `value * 10^5`, rounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Num(i64);

impl Num {
    /// The number at SNS precision, or `None` when it is not finite or outside -1e9..=1e9.
    pub(crate) fn new(value: f64) -> Option<Num> {
        (value.is_finite() && value.abs() <= LIMIT).then(|| Num((value * SCALE).round() as i64))
    }

    /// A message's number written as text (a `Number` attribute's value).
    pub(crate) fn parse(text: &str) -> Option<Num> {
        text.trim().parse::<f64>().ok().and_then(Num::new)
    }
}

/// A comparison of a `numeric` rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// `=`
    Eq,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Op {
    /// The operator spelled as in a policy.
    pub(crate) fn parse(text: &str) -> Option<Op> {
        Some(match text {
            "=" => Op::Eq,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            _ => return None,
        })
    }

    /// Whether `value <op> operand` holds.
    pub(crate) fn holds(self, value: Num, operand: Num) -> bool {
        match self {
            Op::Eq => value == operand,
            Op::Lt => value < operand,
            Op::Le => value <= operand,
            Op::Gt => value > operand,
            Op::Ge => value >= operand,
        }
    }
}
