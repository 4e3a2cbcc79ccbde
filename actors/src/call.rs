//! `netsvc call SERVICE METHOD [ARG …]`: a request by name with JSON arguments; prints the
//! JSON result.

use clap::Args;

use crate::client::{describe_failure, seconds, service_name, CliError, ConnectArgs, Exit};

/// Arguments of `netsvc call`.
#[derive(Args, Debug)]
pub(crate) struct CallArgs {
    /// The service, by name (a local one first, else the one known longest).
    service: String,
    /// The exported method.
    method: String,
    /// The arguments, each a JSON value; a bare word that is not JSON is a string
    /// (`hello` is `"hello"`, `42` a number, `true` a boolean, `[1,2]` an array).
    #[arg(allow_negative_numbers = true)]
    args: Vec<String>,
    /// Seconds to wait for the answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    timeout: f64,
    /// Print the result as a JSON object `{"result": …}` (or `{"error": …}`).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// One command-line argument as a JSON value: JSON if it parses as JSON; otherwise a bare
/// word is a string; something that looks like JSON but does not parse (it starts with
/// `[`, `{` or `"`) is an error naming it, rather than a string nobody meant.
pub(crate) fn parse_arg(arg: &str) -> Result<serde_json::Value, CliError> {
    match serde_json::from_str(arg) {
        Ok(value) => Ok(value),
        Err(e) if arg.trim_start().starts_with(['[', '{', '"']) => Err(CliError::usage(format!(
            "argument {arg:?} is not valid JSON: {e}"
        ))),
        Err(_) => Ok(serde_json::Value::String(arg.to_owned())),
    }
}

/// Runs `netsvc call`.
pub(crate) async fn run(args: CallArgs) -> Result<(), CliError> {
    let service = service_name("service name", &args.service)?;
    let values = args
        .args
        .iter()
        .map(|a| parse_arg(a))
        .collect::<Result<Vec<_>, _>>()?;
    let timeout = seconds("--timeout", args.timeout, false)?;
    let client = args.connect.join("netsvc-call").await?;
    let outcome = client
        .node
        .endpoint(service)
        .with_timeout(timeout)
        .call_dynamic(&args.method, serde_json::Value::Array(values))
        .await;
    match outcome {
        Ok(result) if args.json => println!("{}", serde_json::json!({ "result": result })),
        Ok(result) => println!("{}", pretty(&result)),
        Err(failure) if args.json => {
            println!(
                "{}",
                serde_json::json!({ "error": {
                    "code": failure.code.0,
                    "name": crate::client::code_name(failure.code),
                    "description": failure.description,
                    "origin": failure.origin,
                    "details": failure.details,
                }})
            );
            return Err(CliError {
                exit: Exit::of(&failure),
                message: describe_failure(&failure),
            });
        }
        Err(failure) => return Err(failure.into()),
    }
    Ok(())
}

/// A result as people read it: a string as it is, anything else as JSON.
fn pretty(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_arguments_are_json_and_bare_words_are_strings() {
        assert_eq!(parse_arg("42").unwrap(), json!(42));
        assert_eq!(parse_arg("-7").unwrap(), json!(-7));
        assert_eq!(parse_arg("2.5").unwrap(), json!(2.5));
        assert_eq!(parse_arg("true").unwrap(), json!(true));
        assert_eq!(parse_arg("null").unwrap(), json!(null));
        assert_eq!(parse_arg("[1, \"a\"]").unwrap(), json!([1, "a"]));
        assert_eq!(parse_arg("{\"a\": 1}").unwrap(), json!({"a": 1}));
        assert_eq!(parse_arg("\"quoted\"").unwrap(), json!("quoted"));
        assert_eq!(parse_arg("hello").unwrap(), json!("hello"));
        assert_eq!(parse_arg("hello world").unwrap(), json!("hello world"));
        assert_eq!(parse_arg("").unwrap(), json!(""));
        assert_eq!(parse_arg("12abc").unwrap(), json!("12abc"));
    }

    #[test]
    fn malformed_json_is_an_error_naming_the_argument() {
        for bad in ["[1,", "{\"a\":", "\"open"] {
            let err = parse_arg(bad).unwrap_err();
            assert_eq!(err.exit, Exit::Usage);
            assert!(err.message.contains(&format!("{bad:?}")), "{}", err.message);
        }
    }

    #[test]
    fn results_print_strings_bare_and_the_rest_as_json() {
        assert_eq!(pretty(&json!(42)), "42");
        assert_eq!(pretty(&json!("text")), "text");
        assert_eq!(pretty(&json!({"a": [1]})), "{\"a\":[1]}");
    }
}
