#![allow(missing_docs)]

struct Calculator;

#[netsvc::methods]
impl Calculator {
    fn multiply(&mut self, a: i64, b: i64) -> i64 {
        a * b
    }
}

fn main() {}
