#![allow(missing_docs)]
use netsvc::Service;

#[derive(Service)]
#[service(name = "calculator")]
struct Calculator;

fn main() {}
