#![allow(missing_docs)]
use netsvc::prelude::*;

#[derive(Service)]
struct Greeter;
impl Service for Greeter {}

#[netsvc::methods]
impl Greeter {
    fn greet(&mut self, name: &str) -> String {
        format!("hello, {name}")
    }
}

fn main() {}
