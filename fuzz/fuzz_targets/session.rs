//! A structure-aware session against one in-process hub kept across executions (see
//! `../session.rs`): a valid `Hello`, then frames made from the input, then EOF; the hub must
//! close the connection and keep answering `calculator.multiply(6, 7)` correctly.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../session.rs"]
mod session;

fuzz_target!(|data: &[u8]| session::run(data));
