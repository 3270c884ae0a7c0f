//! Input from an anonymous client, or an operator's typo, must never stop the server: each
//! test here was written against a defect found by attacking the server from outside, and
//! failed before its fix.

mod control_characters;
mod fuzz;
mod http_limits;
mod outage;
mod sessions;
mod startup;
mod throttling;
