//! A policy's structure: keys ANDed, each key's rules ORed, nested body keys flattened into paths,
//! and `$or` groups of alternative sub-policies; with SNS's limits on keys and combinations.
//!
//! `$or` is an operator only when its array holds at least two objects and none of them uses a
//! reserved keyword (an operator name) as a key; otherwise it is an ordinary key ("AND/OR logic").

use serde_json::{Map, Value};

use crate::error::PolicyError;
use crate::pattern::Pattern;
use crate::Scope;

/// The most keys a policy may name ("Filter policy constraints": five).
pub(crate) const MAX_KEYS: usize = 5;
/// The most combinations a policy may have ("Filter policy constraints": 150).
pub(crate) const MAX_COMBINATIONS: u64 = 150;
/// Names that make an object a rule rather than an `$or` branch.
const RESERVED: [&str; 8] = [
    "prefix",
    "suffix",
    "equals-ignore-case",
    "anything-but",
    "numeric",
    "exists",
    "cidr",
    "wildcard",
];

/// An AND of leaves and `$or` groups.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Expr {
    /// Keys that must each match.
    pub(crate) leaves: Vec<Leaf>,
    /// Groups of which each must have a matching branch.
    pub(crate) ors: Vec<Vec<Expr>>,
}

/// A key (its path from the top of the body, one segment for attributes) and its rules.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Leaf {
    /// The key's path.
    pub(crate) path: Vec<String>,
    /// The rules, any of which may match.
    pub(crate) patterns: Vec<Pattern>,
    /// How deep the key is (1 at the top), for the complexity count.
    depth: u64,
}

/// Parses the top-level object of a policy.
pub(crate) fn parse(object: &Map<String, Value>, scope: Scope) -> Result<Expr, PolicyError> {
    let expr = parse_object(object, &[], scope)?;
    let count = keys(&expr);
    if count > MAX_KEYS {
        return Err(PolicyError::TooManyKeys { count, max: MAX_KEYS });
    }
    let combinations = combinations(&expr);
    if combinations > MAX_COMBINATIONS {
        return Err(PolicyError::TooComplex {
            combinations,
            max: MAX_COMBINATIONS,
        });
    }
    Ok(expr)
}

fn parse_object(object: &Map<String, Value>, parent: &[String], scope: Scope) -> Result<Expr, PolicyError> {
    let mut expr = Expr::default();
    for (key, value) in object {
        match or_branches(key, value) {
            Some(branches) => {
                let group = branches.iter().map(|branch| parse_object(branch, parent, scope));
                expr.ors.push(group.collect::<Result<_, _>>()?);
            }
            None => parse_key(&mut expr, parent, key, value, scope)?,
        }
    }
    Ok(expr)
}

/// Adds `key` (under `parent`) to `expr`: its rules, or the keys of its nested object.
fn parse_key(expr: &mut Expr, parent: &[String], key: &str, value: &Value, scope: Scope) -> Result<(), PolicyError> {
    let path: Vec<String> = parent.iter().cloned().chain([key.to_owned()]).collect();
    let name = path.join(".");
    match value {
        Value::Object(_) if scope == Scope::MessageAttributes => Err(PolicyError::NestedInAttributeScope { key: name }),
        Value::Object(child) => {
            let nested = parse_object(child, &path, scope)?;
            expr.leaves.extend(nested.leaves);
            expr.ors.extend(nested.ors);
            Ok(())
        }
        Value::Array(rules) if rules.is_empty() => Err(PolicyError::EmptyArray { key: name }),
        Value::Array(rules) => {
            let patterns = rules.iter().map(|rule| Pattern::parse(&name, rule));
            let patterns = patterns.collect::<Result<_, _>>()?;
            let depth = path.len() as u64;
            expr.leaves.push(Leaf { path, patterns, depth });
            Ok(())
        }
        _ => Err(PolicyError::NotObjectOrArray { key: name }),
    }
}

/// The branches of `"$or": [{..}, {..}, ...]` when SNS reads it as the OR operator.
fn or_branches<'a>(key: &str, value: &'a Value) -> Option<Vec<&'a Map<String, Value>>> {
    let items = value.as_array().filter(|items| key == "$or" && items.len() >= 2)?;
    let branches: Vec<_> = items.iter().map(Value::as_object).collect::<Option<_>>()?;
    let reserved = branches
        .iter()
        .any(|b| b.keys().any(|k| RESERVED.contains(&k.as_str())));
    (!reserved).then_some(branches)
}

/// The distinct key paths named anywhere in the policy, `$or` branches included.
fn keys(expr: &Expr) -> usize {
    let mut paths = Vec::new();
    collect_paths(expr, &mut paths);
    paths.sort_unstable();
    paths.dedup();
    paths.len()
}

fn collect_paths<'a>(expr: &'a Expr, paths: &mut Vec<&'a [String]>) {
    paths.extend(expr.leaves.iter().map(|leaf| leaf.path.as_slice()));
    for branch in expr.ors.iter().flatten() {
        collect_paths(branch, paths);
    }
}

/// The constraints page's count: the product, over keys, of the number of values times the key's
/// depth (its nested-policy example: 3 x 4 x 2 x 3 = 72); an `$or` group adds its branches' counts.
fn combinations(expr: &Expr) -> u64 {
    let leaves = expr.leaves.iter().map(|leaf| leaf.patterns.len() as u64 * leaf.depth);
    let ors = expr
        .ors
        .iter()
        .map(|group| group.iter().map(combinations).fold(0, u64::saturating_add));
    leaves.chain(ors).fold(1, u64::saturating_mul)
}
