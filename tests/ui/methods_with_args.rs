#![allow(missing_docs)]
use netsvc::prelude::*;

#[derive(Service)]
struct Calculator;
impl Service for Calculator {}

#[netsvc::methods(x)]
impl Calculator {
    fn multiply(&mut self, a: i64, b: i64) -> i64 {
        a * b
    }
}

fn main() {}
