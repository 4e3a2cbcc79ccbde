#![allow(missing_docs)]
use netsvc::prelude::*;

#[derive(Service)]
#[service(name = "my calculator")]
struct Calculator;
impl Service for Calculator {}

fn main() {}
