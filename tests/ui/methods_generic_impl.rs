#![allow(missing_docs)]

struct Holder<T>(T);

#[netsvc::methods]
impl<T: Clone> Holder<T> {
    fn get(&mut self) -> T {
        self.0.clone()
    }
}

fn main() {}
