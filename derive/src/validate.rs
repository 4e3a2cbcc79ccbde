//! The checks of a parsed macro input, each failing with the error its user sees.
//!
//! The checks of one input run in source order, so that its error is that of its first fault;
//! the methods that pass become the `Method`s the expansion is made of.

use crate::parse::{
    FnItem, ImplBlock, OptionKey, Param, Receiver, Returns, ServiceAttrs, ServiceOption,
    ServiceType,
};
use proc_macro2::TokenStream;
use syn::spanned::Spanned;
use syn::{Ident, LitStr, ReturnType, Type};

/// An exported method that passed the checks: what its dispatch arm and its client method
/// are made of.
pub(crate) struct Method {
    /// Its name, under which it is exported.
    pub(crate) ident: Ident,
    /// Whether it takes the service's context.
    pub(crate) context: Context,
    /// Its arguments, named, in order.
    pub(crate) params: Vec<(Ident, Type)>,
    /// What it returns.
    pub(crate) returns: Returns,
    /// The first line of its doc comment.
    pub(crate) doc: Option<String>,
}

/// Whether an exported method takes the service's context (right after its receiver).
#[derive(Clone, Copy)]
pub(crate) enum Context {
    /// It does: `fn f(&mut self, ctx: &mut ServiceContext<Self>, ..)`.
    Taken,
    /// It does not: `fn f(&mut self, ..)`.
    NotTaken,
}

/// Whether a name may be empty.
#[derive(Clone, Copy)]
enum Empty {
    /// The empty name means something: the anonymous service, the audience of one process.
    Allowed,
    /// The empty name would name nothing.
    Rejected,
}

/// Checks `lit`, a name of the `kind` given, with the rules of `netsvc::ServiceName::new`: no
/// whitespace or control characters, and not empty unless `empty` allows it.
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

/// Checks the arguments of `#[netsvc::methods]`: there are none.
pub(crate) fn methods_args(args: &TokenStream) -> syn::Result<()> {
    if !args.is_empty() {
        return Err(syn::Error::new_spanned(
            args,
            "#[netsvc::methods] takes no arguments; write `#[netsvc::methods]`",
        ));
    }
    Ok(())
}

/// Checks an impl block under `#[netsvc::methods]`: an inherent impl on a concrete type with a
/// name, and with methods. Returns that name.
pub(crate) fn impl_block<'a>(block: &ImplBlock<'a>) -> syn::Result<&'a Ident> {
    if !block.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            block.generics,
            "#[netsvc::methods] does not support generic impls",
        ));
    }
    if let Some(path) = block.trait_path {
        return Err(syn::Error::new_spanned(
            path,
            "#[netsvc::methods] goes on an inherent impl block, not a trait impl",
        ));
    }
    let Some(type_name) = block.type_name else {
        return Err(syn::Error::new_spanned(
            block.self_ty,
            "#[netsvc::methods] expects `impl SomeService { ... }`",
        ));
    };
    if block.fns.is_empty() {
        return Err(syn::Error::new_spanned(
            block.self_ty,
            "#[netsvc::methods] found no methods to export: add a `fn` taking `&mut self` or `&self`, \
             or remove the attribute",
        ));
    }
    Ok(type_name)
}

/// Checks every `fn` of a block: the methods that pass, and the errors of the others, combined.
pub(crate) fn methods(fns: &[FnItem]) -> (Vec<Method>, Option<syn::Error>) {
    let mut methods = Vec::new();
    let mut errors: Option<syn::Error> = None;
    for f in fns {
        match method(f) {
            Ok(m) => methods.push(m),
            Err(err) => match &mut errors {
                Some(all) => all.combine(err),
                None => errors = Some(err),
            },
        }
    }
    (methods, errors)
}

/// Checks a `fn` for export, in source order: the first fault of its signature, receiver,
/// parameters or return type.
fn method(f: &FnItem) -> syn::Result<Method> {
    signature(f)?;
    receiver(f)?;
    let (context, params) = params(&f.params)?;
    let returns = returns(f, context)?;
    Ok(Method {
        ident: f.sig.ident.clone(),
        context,
        params,
        returns,
        doc: f.doc.clone(),
    })
}

/// Checks what comes before the parameters: an exported method is neither async nor generic.
fn signature(f: &FnItem) -> syn::Result<()> {
    let sig = f.sig;
    if sig.asyncness.is_some() {
        return Err(syn::Error::new(
            sig.asyncness.span(),
            "exported methods cannot be async: use ctx.suspend_response() and return Delayed<T>",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            "exported methods cannot be generic",
        ));
    }
    Ok(())
}

/// Checks that a method borrows the service, which lives in its actor.
fn receiver(f: &FnItem) -> syn::Result<()> {
    let ident = &f.sig.ident;
    match f.receiver {
        Receiver::Borrowed => Ok(()),
        Receiver::Other(r) => Err(syn::Error::new_spanned(
            r,
            format!("exported method `{ident}` must take `&mut self` or `&self`"),
        )),
        Receiver::Missing => Err(syn::Error::new(
            ident.span(),
            format!(
                "exported method `{ident}` must take `&mut self` or `&self` (every fn in a \
                 #[netsvc::methods] block is exported: put other functions in another impl block)"
            ),
        )),
    }
}

/// Checks the parameters after the receiver: the context, if taken, comes first and mutable;
/// the arguments are owned. Returns whether the context is taken, and the arguments.
fn params(params: &[Param]) -> syn::Result<(Context, Vec<(Ident, Type)>)> {
    let mut context = Context::NotTaken;
    let mut args = Vec::new();
    for (position, param) in params.iter().enumerate() {
        match param {
            Param::Context { arg, ty } => {
                if position != 0 {
                    return Err(syn::Error::new_spanned(
                        arg,
                        "the `ctx: &mut ServiceContext<Self>` parameter must come right after the receiver",
                    ));
                }
                if ty.mutability.is_none() {
                    return Err(syn::Error::new_spanned(
                        ty,
                        "take the context as `ctx: &mut ServiceContext<Self>`",
                    ));
                }
                context = Context::Taken;
            }
            Param::Arg {
                ty: Type::Reference(r),
                ..
            } => {
                return Err(syn::Error::new_spanned(
                    r,
                    "parameters of exported methods must be owned types (they arrive in a request), not references: \
                     take `String` for `&str`, `Vec<T>` for `&[T]`, `T` for `&T`",
                ))
            }
            Param::Arg { ident, ty } => args.push((ident.clone(), (*ty).clone())),
        }
    }
    Ok((context, args))
}

/// Checks the return type: readable, and `Delayed<T>` only with the context, through which
/// the response is suspended.
fn returns(f: &FnItem, context: Context) -> syn::Result<Returns> {
    let returns = f.returns.clone()?;
    if let (Returns::Delayed(_), ReturnType::Type(_, ty), Context::NotTaken) =
        (&returns, &f.sig.output, context)
    {
        return Err(syn::Error::new_spanned(
            ty,
            "a method returning Delayed<T> must take `ctx: &mut ServiceContext<Self>` (right after the \
             receiver) to suspend its response with `ctx.suspend_response()`",
        ));
    }
    Ok(returns)
}
