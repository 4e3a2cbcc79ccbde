//! `netsvc::fuzzing::check_payload` on arbitrary bytes (see that function for what it checks).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| netsvc::fuzzing::check_payload(data));
