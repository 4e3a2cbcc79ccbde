#![allow(missing_docs)]
use netsvc::prelude::*;

#[derive(Service)]
#[service(name = "publisher", groups = ["time-sources", ""])]
struct Publisher;
impl Service for Publisher {}

fn main() {}
