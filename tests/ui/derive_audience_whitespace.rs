#![allow(missing_docs)]
use netsvc::prelude::*;

#[derive(Service)]
#[service(name = "calculator", audience = "every one")]
struct Calculator;
impl Service for Calculator {}

fn main() {}
