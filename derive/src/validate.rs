//! The checks of a macro input that syn's parsing does not make.

use syn::LitStr;

pub(crate) fn check_name(kind: &str, lit: &LitStr, allow_empty: bool) -> syn::Result<()> {
    let value = lit.value();
    if value.is_empty() && !allow_empty {
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
