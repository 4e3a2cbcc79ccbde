#![allow(missing_docs)]
use netsvc::prelude::*;
use netsvc::Delayed;

#[derive(Service)]
struct Calculator;
impl Service for Calculator {}

#[netsvc::methods]
impl Calculator {
    fn slow(&mut self, x: i64) -> Delayed<i64> {
        let _ = x;
        panic!("a Delayed can only come from ctx.suspend_response()")
    }
}

fn main() {}
