#![allow(missing_docs)]
use netsvc::prelude::*;

#[derive(Service)]
#[service(name = "calc\u{7}")]
struct Calculator;
impl Service for Calculator {}

fn main() {}
