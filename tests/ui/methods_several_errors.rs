#![allow(missing_docs)]
//! Every invalid method is reported at once; the valid ones still get a client method.
use netsvc::prelude::*;

#[derive(Service)]
struct Calculator;
impl Service for Calculator {}

#[netsvc::methods]
impl Calculator {
    fn new() -> Self {
        Calculator
    }

    fn multiply(&mut self, a: i64, b: i64) -> i64 {
        a * b
    }

    fn sum(&mut self, values: &[i64]) -> i64 {
        values.iter().sum()
    }
}

fn use_client(client: &CalculatorClient) {
    let _ = client.multiply(6, 7);
}

fn main() {
    let _ = (Calculator::new(), use_client);
}
