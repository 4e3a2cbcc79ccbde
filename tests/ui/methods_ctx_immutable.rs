#![allow(missing_docs)]
use netsvc::prelude::*;

#[derive(Service)]
struct Calculator;
impl Service for Calculator {}

#[netsvc::methods]
impl Calculator {
    fn whoami(&mut self, ctx: &ServiceContext<Self>) -> String {
        ctx.binding().name().to_string()
    }
}

fn main() {}
