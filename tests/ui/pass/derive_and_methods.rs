#![allow(missing_docs)]
//! The happy path: a derived service with every kind of exported method, and its client.

use netsvc::prelude::*;
use netsvc::{Call, Delayed};
use std::time::Duration;

#[derive(Service)]
#[service(name = "calculator", audience = "*", groups = ["maths", "demo"])]
struct Calculator {
    calls: u64,
}

impl Service for Calculator {}

#[netsvc::methods]
impl Calculator {
    fn multiply(&mut self, a: i64, b: i64) -> i64 {
        self.calls += 1;
        a * b
    }

    fn calls(&self) -> u64 {
        self.calls
    }

    fn reset(&mut self) {
        self.calls = 0;
    }

    fn divide(&mut self, a: i64, b: i64) -> Result<i64, Failure> {
        if b == 0 {
            return Err(Failure::new(ErrorCode::SERVER_APPLICATION_ERROR, "division by zero"));
        }
        Ok(a / b)
    }

    fn whoami(&mut self, ctx: &mut ServiceContext<Self>) -> String {
        ctx.binding().name().to_string()
    }

    fn slow_square(&mut self, ctx: &mut ServiceContext<Self>, x: i64) -> Delayed<i64> {
        let (responder, delayed) = ctx.suspend_response();
        ctx.run_later(Duration::from_millis(10), move |_, _| responder.resolve(x * x));
        delayed
    }
}

#[derive(Service)]
struct Anonymous;
impl Service for Anonymous {}

/// Type-checks the generated client's signatures.
#[allow(dead_code)]
fn client_types(client: &CalculatorClient) {
    let _: Call<i64> = client.multiply(6, 7);
    let _: Call<u64> = client.calls();
    let _: Call<()> = client.reset();
    let _: Call<i64> = client.divide(1, 0);
    let _: Call<String> = client.whoami();
    let _: Call<i64> = client.slow_square(3);
    let _: &Endpoint = client.endpoint();
    let _ = client.clone();
}

/// trybuild runs pass cases: the exported methods are really dispatched.
#[actix::main]
async fn main() {
    let node = Node::new("ui-pass");
    let calc = node.spawn(Calculator { calls: 0 });
    let client = CalculatorClient::new(node.endpoint(&calc.binding));
    assert_eq!(client.multiply(6, 7).await.unwrap(), 42);
    assert_eq!(client.calls().await.unwrap(), 1);
    client.reset().await.unwrap();
    assert_eq!(client.calls().await.unwrap(), 0);
    assert_eq!(client.divide(7, 2).await.unwrap(), 3);
    assert_eq!(client.divide(1, 0).await.unwrap_err().code, ErrorCode::SERVER_APPLICATION_ERROR);
    assert_eq!(client.whoami().await.unwrap(), "calculator");
    assert_eq!(client.slow_square(5).await.unwrap(), 25);

    let anonymous = node.spawn(Anonymous);
    let nothing = CalculatorClient::new(node.endpoint(&anonymous.binding));
    assert_eq!(nothing.multiply(1, 2).await.unwrap_err().code, ErrorCode::SERVER_METHOD_UNAVAILABLE);
}
