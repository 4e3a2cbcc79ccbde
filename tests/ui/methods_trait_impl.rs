#![allow(missing_docs)]
use netsvc::prelude::*;

#[derive(Service)]
struct Calculator;
impl Service for Calculator {}

#[netsvc::methods]
impl Default for Calculator {
    fn default() -> Self {
        Calculator
    }
}

fn main() {}
