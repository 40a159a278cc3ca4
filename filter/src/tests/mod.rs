//! Table tests: one row per rule, grouped under why-comments, examples from the SNS pages.

mod matching;
mod parse;
