#![allow(missing_docs)]
use netsvc::Service;

#[derive(Service)]
struct Wrapper<T> {
    inner: T,
}

fn main() {}
