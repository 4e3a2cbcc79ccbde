//! Macros for netsvc: `#[derive(Service)]` and `#[netsvc::methods]`.
//!
//! Each macro parses its input, validates it (names are checked at compile time with the
//! same rules as `netsvc::ServiceName::new`), and expands; an invalid input gives a compile
//! error pointing at the offending token. Those are the jobs of the modules `parse`,
//! `validate` and `expand`; this one holds the entry points.

mod expand;
mod parse;
mod validate;

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use syn::{parse_macro_input, DeriveInput, ItemImpl};

/// Makes a struct a netsvc service: an actix `Actor` with a `ServiceContext`, fed by its inbox.
///
/// ```ignore
/// #[derive(Service)]
/// #[service(name = "publisher", audience = "*", groups = ["time-sources"])]
/// struct Publisher;
/// impl Service for Publisher {}
/// ```
///
/// `name` defaults to the empty name (an anonymous service), `audience` to `"*"`, `groups` to
/// none. Names may not contain whitespace or control characters; groups may not be empty.
#[proc_macro_derive(Service, attributes(service))]
pub fn derive_service(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::derive_service(&input).into()
}

/// Exports every method of an impl block as a request handler and generates a typed client
/// `<Type>Client`.
///
/// ```ignore
/// #[netsvc::methods]
/// impl Calculator {
///     fn multiply(&mut self, a: i64, b: i64) -> i64 { a * b }
///     fn divide(&mut self, a: i64, b: i64) -> Result<i64, Failure> { ... }
///     fn slow(&mut self, ctx: &mut ServiceContext<Self>, x: i64) -> Delayed<i64> { ... }
/// }
/// // calculator.multiply(2, 3).await == Ok(6)
/// ```
///
/// Every `fn` in the block is exported under its own name (put helpers in another impl
/// block). A method takes `&mut self` or `&self`, optionally `&mut ServiceContext<Self>`
/// next, then owned parameters. It returns a value, `Result<T, E>` with `E: Into<Failure>`
/// (an error becomes an application failure), or `Delayed<T>` after
/// `ctx.suspend_response()`.
///
/// The block is also recorded as data, for the service's descriptor (`netsvc::ServiceDescriptor`,
/// which tools without Rust types read): each method's name, its parameters' names and types as
/// written (token text such as `Vec<String>`, not resolved), the type of the value the caller
/// gets (`T` of `Result<T, E>` and `Delayed<T>`), whether it returns a `Result`, whether it is
/// delayed, and the first line of its doc comment. The record is static: describing a service
/// costs nothing until someone asks. Every service answers the reserved method `$describe`
/// (`netsvc::DESCRIBE_METHOD`) with its descriptor, before its own dispatch; no exported method
/// can take that name, since Rust identifiers cannot start with `$`. A service without
/// `#[netsvc::methods]` describes itself with no methods.
#[proc_macro_attribute]
pub fn methods(args: TokenStream, input: TokenStream) -> TokenStream {
    let args = TokenStream2::from(args);
    let item = parse_macro_input!(input as ItemImpl);
    expand::methods(args, &item).into()
}
