#![allow(missing_docs)]
use netsvc::prelude::*;

#[derive(Service)]
struct Echo;
impl Service for Echo {}

#[netsvc::methods]
impl Echo {
    fn echo<T>(&mut self, value: T) -> T {
        value
    }
}

fn main() {}
