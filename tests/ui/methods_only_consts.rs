#![allow(missing_docs)]
use netsvc::prelude::*;

#[derive(Service)]
struct Calculator;
impl Service for Calculator {}

#[netsvc::methods]
impl Calculator {
    const LIMIT: i64 = 10;
}

fn main() {}
