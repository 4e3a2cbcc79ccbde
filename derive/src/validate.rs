//! The checks of a parsed macro input, each failing with the error its user sees.

use crate::parse::{OptionKey, ServiceAttrs, ServiceOption, ServiceType};
use syn::LitStr;

/// Whether a name may be empty.
#[derive(Clone, Copy)]
enum Empty {
    /// The empty name means something: the anonymous service, the audience of one process.
    Allowed,
    /// The empty name would name nothing.
    Rejected,
}

/// Checks a name (the `kind` of name says which) with the rules of `netsvc::ServiceName::new`:
/// no whitespace or control characters.
fn check_name(kind: &str, lit: &LitStr, empty: Empty) -> syn::Result<()> {
    let value = lit.value();
    if value.is_empty() && matches!(empty, Empty::Rejected) {
        return Err(syn::Error::new(
            lit.span(),
            format!("invalid {kind}: must not be empty"),
        ));
    }
    if let Some(c) = value.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(syn::Error::new(
            lit.span(),
            format!(
                "invalid {kind} {value:?}: contains {c:?} (no whitespace or control characters)"
            ),
        ));
    }
    Ok(())
}

/// Checks the type deriving `Service`: a service is one concrete type.
pub(crate) fn service_type(service: &ServiceType) -> syn::Result<()> {
    if !service.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            service.generics,
            "#[derive(Service)] does not support generic types",
        ));
    }
    Ok(())
}

/// Checks the `#[service(...)]` options: the first fault in source order, be it a name that
/// breaks the rules or an option that could not be read.
pub(crate) fn service_attrs(attrs: &ServiceAttrs) -> syn::Result<()> {
    for ServiceOption { key, lit } in &attrs.options {
        match key {
            OptionKey::Name => check_name("service name", lit, Empty::Allowed)?,
            // `"*"` is not a name but everyone.
            OptionKey::Audience if lit.value() == "*" => {}
            OptionKey::Audience => check_name("audience", lit, Empty::Allowed)?,
            OptionKey::Group => check_name("group name", lit, Empty::Rejected)?,
        }
    }
    // Every option read comes before the one that could not be.
    match &attrs.unreadable {
        Some(err) => Err(err.clone()),
        None => Ok(()),
    }
}
