//! Requests through the public API: responses, failures and their codes, timeouts,
//! withdrawal, delayed responses.

mod common;

use std::time::Duration;

use common::{probe, settle};
use netsvc::prelude::*;
use serde_json::json;
use tokio::sync::mpsc::UnboundedSender;

#[derive(Service)]
#[service(name = "calculator")]
struct Calculator {
    log: Option<UnboundedSender<String>>,
}

impl Service for Calculator {
    fn stopping(&mut self, _ctx: &mut ServiceContext<Self>) {
        if let Some(log) = &self.log {
            let _ = log.send("calculator stopping".into());
        }
    }
}

#[netsvc::methods]
impl Calculator {
    fn multiply(&mut self, a: i64, b: i64) -> i64 {
        a * b
    }

    fn divide(&mut self, a: i64, b: i64) -> Result<i64, Failure> {
        if b == 0 {
            return Err(
                Failure::new(ErrorCode(100), "division by zero").with_details(format!("{a} / 0"))
            );
        }
        Ok(a / b)
    }

    fn crash(&mut self) -> u32 {
        panic!("the calculator fell over")
    }

    fn echo_sender(&mut self, ctx: &mut ServiceContext<Self>) -> String {
        ctx.current_request()
            .map(|r| r.sender.agent().to_string())
            .unwrap_or_default()
    }

    fn never(&mut self, ctx: &mut ServiceContext<Self>) -> Delayed<u32> {
        // Suspends and keeps the responder alive in a pending future that never completes.
        let (responder, delayed) = ctx.suspend_response::<u32>();
        ctx.spawn(actix::fut::wrap_future(async move {
            std::future::pending::<()>().await;
            drop(responder);
        }));
        delayed
    }

    fn sleep_then(
        &mut self,
        ctx: &mut ServiceContext<Self>,
        millis: u64,
        value: u32,
    ) -> Delayed<u32> {
        let (responder, delayed) = ctx.suspend_response::<u32>();
        ctx.run_later(Duration::from_millis(millis), move |_, _| {
            responder.resolve(value)
        });
        delayed
    }

    fn greet(&mut self, name: String) -> String {
        format!("hello {name}")
    }
}

fn calculator() -> Calculator {
    Calculator { log: None }
}

#[actix::test]
async fn typed_and_dynamic_calls_return_responses() {
    let node = Node::new("test");
    let calc = node.spawn(calculator());
    let by_binding = CalculatorClient::new(node.endpoint(&calc.binding));
    assert_eq!(by_binding.multiply(6, 7).await, Ok(42));
    assert_eq!(
        by_binding.greet("ose".into()).await,
        Ok("hello ose".to_string())
    );

    let by_name = CalculatorClient::new(node.endpoint("calculator"));
    assert_eq!(by_name.divide(9, 3).await, Ok(3));

    let dynamic = node.endpoint("calculator");
    assert_eq!(
        dynamic.call_dynamic("multiply", json!([3, 5])).await,
        Ok(json!(15))
    );
    assert_eq!(
        dynamic.call_dynamic("greet", json!(["json"])).await,
        Ok(json!("hello json"))
    );
}

#[actix::test]
async fn conversation_ids_are_distinct_and_reported_in_failures() {
    let node = Node::new("test");
    let calc = node.spawn(calculator());
    let client = CalculatorClient::new(node.endpoint(&calc.binding));
    let a = client.multiply(1, 1);
    let b = client.divide(1, 0);
    assert_ne!(a.conversation(), b.conversation());
    let id = b.conversation();
    let failure = b.await.unwrap_err();
    assert_eq!(failure.conversation, Some(id));
    assert_eq!(a.await, Ok(1));
}

#[actix::test]
async fn application_failures_carry_their_code_and_the_service_as_origin() {
    let node = Node::new("test");
    let calc = node.spawn(calculator());
    let failure = CalculatorClient::new(node.endpoint(&calc.binding))
        .divide(1, 0)
        .await
        .unwrap_err();
    assert_eq!(failure.code, ErrorCode(100));
    assert_eq!(failure.description, "division by zero");
    assert_eq!(failure.origin, "calculator");
    assert_eq!(failure.details, "1 / 0");
}

#[actix::test]
async fn unknown_method_wrong_arity_and_wrong_types_are_server_failures() {
    let node = Node::new("test");
    node.spawn(calculator());
    let ep = node.endpoint("calculator");

    let f = ep
        .call_dynamic("square_root", json!([4]))
        .await
        .unwrap_err();
    assert_eq!(f.code, ErrorCode::SERVER_METHOD_UNAVAILABLE);
    assert_eq!(f.origin, "netsvc");
    assert!(f.description.contains("square_root"), "{}", f.description);

    let f = ep
        .call_dynamic("multiply", json!([1, 2, 3]))
        .await
        .unwrap_err();
    assert_eq!(f.code, ErrorCode::SERVER_PARAMETERS_INCORRECT);
    assert!(
        f.description.contains("expects 2 argument(s), received 3"),
        "{}",
        f.description
    );

    let f = ep
        .call_dynamic("multiply", json!(["two", 3]))
        .await
        .unwrap_err();
    assert_eq!(f.code, ErrorCode::SERVER_REQUEST_DECODING_ERROR);
    assert!(f.description.contains("multiply"), "{}", f.description);

    // A typed call with the right name but the wrong argument types names both types.
    let f = ep
        .call::<_, i64>("multiply", ("six".to_string(), 7i64))
        .await
        .unwrap_err();
    assert_eq!(f.code, ErrorCode::SERVER_REQUEST_DECODING_ERROR);
    assert!(f.description.contains("(i64, i64)"), "{}", f.description);
    assert!(
        f.description.contains("alloc::string::String"),
        "{}",
        f.description
    );

    // A response of another type than expected is a client-side decoding error.
    let f = ep
        .call::<_, String>("multiply", (6i64, 7i64))
        .await
        .unwrap_err();
    assert_eq!(f.code, ErrorCode::CLIENT_RESPONSE_DECODING_ERROR);
    assert!(
        f.description.contains("i64") && f.description.contains("String"),
        "{}",
        f.description
    );
}

#[actix::test]
async fn a_panicking_method_fails_the_request_and_the_service_keeps_running() {
    let node = Node::new("test");
    let calc = node.spawn(calculator());
    let client = CalculatorClient::new(node.endpoint(&calc.binding));
    let f = client.crash().await.unwrap_err();
    assert_eq!(f.code, ErrorCode::SERVER_APPLICATION_ERROR);
    assert_eq!(f.details, "the calculator fell over");
    assert_eq!(client.multiply(2, 2).await, Ok(4));
}

#[actix::test]
async fn no_such_service_fails_at_once() {
    let node = Node::new("test");
    let started = std::time::Instant::now();
    let f = node
        .endpoint("nobody")
        .call_dynamic("x", json!([]))
        .await
        .unwrap_err();
    assert_eq!(f.code, ErrorCode::CLIENT_SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(1));
    // An invalid name finds no service either, with the same clear failure.
    let f = node
        .endpoint("two words")
        .call_dynamic("x", json!([]))
        .await
        .unwrap_err();
    assert_eq!(f.code, ErrorCode::CLIENT_SERVICE_UNAVAILABLE);
}

#[actix::test]
async fn timeout_fails_the_call_and_the_late_response_is_dropped() {
    let node = Node::new("test");
    let calc = node.spawn(calculator());
    let client = CalculatorClient::new(
        node.endpoint(&calc.binding)
            .with_timeout(Duration::from_millis(50)),
    );
    let f = client.sleep_then(300, 1).await.unwrap_err();
    assert_eq!(f.code, ErrorCode::CLIENT_REQUEST_TIMEOUT);
    assert_eq!(f.origin, "netsvc");
    tokio::time::sleep(Duration::from_millis(400)).await;
    // The late response went nowhere, and the service is fine.
    assert_eq!(client.multiply(3, 3).await, Ok(9));
    // Without the timeout the delayed response arrives.
    let patient = CalculatorClient::new(node.endpoint(&calc.binding));
    assert_eq!(patient.sleep_then(20, 7).await, Ok(7));
}

#[actix::test]
async fn pending_and_suspended_requests_fail_when_the_target_is_withdrawn() {
    let node = Node::new("test");
    let (tx, mut log) = probe();
    let calc = node.spawn(Calculator { log: Some(tx) });
    let client = CalculatorClient::new(node.endpoint(&calc.binding));
    let suspended = client.never();
    let handle = actix::spawn(suspended);
    settle().await;
    calc.stop();
    assert_eq!(log.next().await, "calculator stopping");
    let f = tokio::time::timeout(Duration::from_secs(1), handle)
        .await
        .expect("failed at once")
        .unwrap()
        .unwrap_err();
    assert_eq!(f.code, ErrorCode::SERVER_APPLICATION_ERROR);
    assert!(
        f.description.contains("stopped before responding"),
        "{}",
        f.description
    );

    // After withdrawal: calls along the old binding fail as unavailable, at once.
    settle().await;
    let f = client.multiply(1, 2).await.unwrap_err();
    assert_eq!(f.code, ErrorCode::CLIENT_SERVICE_UNAVAILABLE);
    // And by name there is nobody left.
    let f = CalculatorClient::new(node.endpoint("calculator"))
        .multiply(1, 2)
        .await
        .unwrap_err();
    assert_eq!(f.code, ErrorCode::CLIENT_SERVICE_UNAVAILABLE);
}

#[actix::test]
async fn the_requester_binding_is_known_while_serving() {
    let node = Node::new("test");
    let calc = node.spawn(calculator());
    let asker = node.spawn(Asker {
        target: calc.binding.clone(),
        log: probe().0,
    });
    let (tx, mut log) = probe();
    let asker2 = node.spawn(Asker {
        target: calc.binding.clone(),
        log: tx,
    });
    let _ = asker;
    assert_eq!(log.next().await, asker2.binding.agent().to_string());
}

/// Calls the calculator from inside a service, without blocking its mailbox.
#[derive(Service)]
struct Asker {
    target: Binding,
    log: UnboundedSender<String>,
}

impl Service for Asker {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        let call = CalculatorClient::new(ctx.endpoint(&self.target)).echo_sender();
        ctx.on_response(call, |me, outcome, _ctx| {
            let _ = me.log.send(outcome.unwrap_or_else(|f| f.to_string()));
        });
    }
}

/// A front end whose method answers only after its own downstream request.
#[derive(Service)]
#[service(name = "front")]
struct Front;
impl Service for Front {}

#[netsvc::methods]
impl Front {
    fn square_via_backend(&mut self, ctx: &mut ServiceContext<Self>, x: i64) -> Delayed<i64> {
        let (responder, delayed) = ctx.suspend_response::<i64>();
        let call = CalculatorClient::new(ctx.endpoint("calculator")).multiply(x, x);
        ctx.on_response(call, move |_, outcome, _| responder.complete(outcome));
        delayed
    }

    fn forget(&mut self, ctx: &mut ServiceContext<Self>) -> Delayed<i64> {
        let (responder, delayed) = ctx.suspend_response::<i64>();
        drop(responder);
        delayed
    }

    fn fail_later(&mut self, ctx: &mut ServiceContext<Self>) -> Delayed<i64> {
        let (responder, delayed) = ctx.suspend_response::<i64>();
        ctx.run_later(Duration::from_millis(10), move |_, _| {
            responder.fail(Failure::new(ErrorCode(77), "not today"));
        });
        delayed
    }
}

#[actix::test]
async fn delayed_responses_resolve_after_downstream_requests_or_fail() {
    let node = Node::new("test");
    node.spawn(calculator());
    let front = node.spawn(Front);
    let client = FrontClient::new(node.endpoint(&front.binding));
    assert_eq!(client.square_via_backend(12).await, Ok(144));

    let f = client.forget().await.unwrap_err();
    assert_eq!(f.code, ErrorCode::SERVER_RESPONSE_ABORTED);

    let f = client.fail_later().await.unwrap_err();
    assert_eq!(f.code, ErrorCode(77));
    assert_eq!(f.origin, "front");
}

/// A message of the user's own, through the service's actix address.
#[derive(actix::Message)]
#[rtype(result = "u32")]
struct Echo(u32);

impl actix::Handler<Echo> for Calculator {
    type Result = u32;
    fn handle(&mut self, msg: Echo, _ctx: &mut ServiceContext<Self>) -> u32 {
        msg.0
    }
}

/// Makes the service send itself an [`Echo`] through `ctx.address()`.
#[derive(actix::Message)]
#[rtype(result = "()")]
struct EchoSelf(tokio::sync::oneshot::Sender<Result<u32, actix::MailboxError>>);

impl actix::Handler<EchoSelf> for Calculator {
    type Result = ();
    fn handle(&mut self, msg: EchoSelf, ctx: &mut ServiceContext<Self>) {
        let addr = ctx.address();
        actix::spawn(async move {
            let _ = msg.0.send(addr.send(Echo(7)).await);
        });
    }
}

#[actix::test]
async fn the_actix_address_is_made_on_first_use_and_closes_with_the_service() {
    let node = Node::new("test");
    let calc = node.spawn(calculator());
    let client = CalculatorClient::new(node.endpoint(&calc.binding));
    // Requests never need the actix mailbox.
    assert_eq!(client.multiply(6, 7).await, Ok(42));
    // Made on first use, here from another thread; every address reaches the same mailbox.
    let spawned = calc.clone();
    let first = std::thread::spawn(move || spawned.addr())
        .join()
        .expect("the address is made on any thread");
    let second = calc.addr();
    let (a, b) = tokio::join!(first.send(Echo(1)), second.send(Echo(2)));
    assert_eq!((a, b), (Ok(1), Ok(2)));
    assert!(first.connected() && second.connected());
    // And from inside the service.
    let (tx, rx) = tokio::sync::oneshot::channel();
    calc.addr().send(EchoSelf(tx)).await.expect("delivered");
    assert_eq!(rx.await.expect("answered"), Ok(7));
    // Requests still go through the inbox, the mailbox now polled beside it.
    assert_eq!(client.multiply(3, 5).await, Ok(15));
    // Withdrawn, the service's mailbox goes: addresses made before and after are closed.
    calc.stop();
    tokio::time::timeout(Duration::from_secs(3), async {
        while node.lookup_agent(calc.binding.agent()).await.is_some() {
            settle().await;
        }
    })
    .await
    .expect("the service is withdrawn");
    assert_eq!(
        calc.addr().send(Echo(3)).await,
        Err(actix::MailboxError::Closed)
    );
    tokio::time::timeout(Duration::from_secs(3), async {
        while first.connected() {
            settle().await;
        }
    })
    .await
    .expect("the mailbox goes with the service");
    assert_eq!(first.send(Echo(4)).await, Err(actix::MailboxError::Closed));
}

#[actix::test]
async fn a_message_sent_at_once_after_spawning_is_handled() {
    // The mailbox is made before the service's task first runs: it adopts it then.
    let node = Node::new("test");
    let calc = node.spawn(calculator());
    assert_eq!(calc.addr().send(Echo(9)).await, Ok(9));
}
