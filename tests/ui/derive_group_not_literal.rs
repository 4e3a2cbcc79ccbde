#![allow(missing_docs)]
use netsvc::prelude::*;

const GROUP: &str = "time-sources";

#[derive(Service)]
#[service(name = "publisher", groups = [GROUP])]
struct Publisher;
impl Service for Publisher {}

fn main() {}
