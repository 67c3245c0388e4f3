//! Reports: turning run documents into what people read.
//!
//! Owns presentation only; every fact shown here comes from a [`RunDocument`] or a history
//! record. This report is the terminal table; HTML and PDF reports build on the same
//! inputs.

pub mod table;
