#![allow(missing_docs)]
use netsvc::prelude::*;

#[derive(Service)]
struct Calculator;
impl Service for Calculator {}

#[netsvc::methods]
impl Calculator {
    fn square(&mut self, x: i64, ctx: &mut ServiceContext<Self>) -> i64 {
        let _ = ctx;
        x * x
    }
}

fn main() {}
