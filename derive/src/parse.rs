//! Reading a macro input from syn: the `#[service(...)]` options and the exported methods.

use crate::validate::check_name;
use quote::format_ident;
use syn::spanned::Spanned;
use syn::{DeriveInput, Expr, ExprLit, FnArg, Lit, LitStr, Pat, ReturnType, Type};

#[derive(Default)]
pub(crate) struct ServiceAttr {
    pub(crate) name: Option<LitStr>,
    pub(crate) audience: Option<LitStr>,
    pub(crate) groups: Vec<LitStr>,
}

pub(crate) fn parse_service_attr(input: &DeriveInput) -> syn::Result<ServiceAttr> {
    let mut attr = ServiceAttr {
        name: None,
        audience: None,
        groups: Vec::new(),
    };
    for a in input.attrs.iter().filter(|a| a.path().is_ident("service")) {
        a.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                let lit: LitStr = meta.value()?.parse()?;
                check_name("service name", &lit, true)?;
                attr.name = Some(lit);
            } else if meta.path.is_ident("audience") {
                let lit: LitStr = meta.value()?.parse()?;
                if lit.value() != "*" {
                    check_name("audience", &lit, true)?;
                }
                attr.audience = Some(lit);
            } else if meta.path.is_ident("groups") {
                let expr: Expr = meta.value()?.parse()?;
                let Expr::Array(array) = expr else {
                    return Err(syn::Error::new_spanned(
                        expr,
                        "expected `groups = [\"a\", \"b\"]`",
                    ));
                };
                for elem in array.elems {
                    match elem {
                        Expr::Lit(ExprLit {
                            lit: Lit::Str(s), ..
                        }) => {
                            check_name("group name", &s, false)?;
                            attr.groups.push(s);
                        }
                        other => return Err(syn::Error::new_spanned(
                            other,
                            "group names must be string literals, as in `groups = [\"a\", \"b\"]`",
                        )),
                    }
                }
            } else {
                return Err(meta
                    .error("unknown service attribute; expected `name`, `audience` or `groups`"));
            }
            Ok(())
        })?;
    }
    Ok(attr)
}

pub(crate) enum Returns {
    Plain(Type),
    Result(Type),
    Delayed(Type),
}

pub(crate) struct Method {
    pub(crate) ident: syn::Ident,
    pub(crate) with_ctx: bool,
    pub(crate) params: Vec<(syn::Ident, Type)>,
    pub(crate) returns: Returns,
}

pub(crate) fn last_segment_args<'a>(ty: &'a Type, name: &str) -> Option<&'a syn::PathArguments> {
    let Type::Path(path) = ty else { return None };
    let seg = path.path.segments.last()?;
    (seg.ident == name).then_some(&seg.arguments)
}

fn first_type_arg(args: &syn::PathArguments) -> Option<Type> {
    let syn::PathArguments::AngleBracketed(ab) = args else {
        return None;
    };
    ab.args.iter().find_map(|a| match a {
        syn::GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    })
}

/// `&ServiceContext<..>` or `&mut ServiceContext<..>`.
fn service_context_ref(ty: &Type) -> Option<&syn::TypeReference> {
    match ty {
        Type::Reference(r) if last_segment_args(&r.elem, "ServiceContext").is_some() => Some(r),
        _ => None,
    }
}

pub(crate) fn parse_method(f: &syn::ImplItemFn) -> syn::Result<Method> {
    let sig = &f.sig;
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
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() => {}
        Some(FnArg::Receiver(r)) => {
            return Err(syn::Error::new_spanned(
                r,
                format!("exported method `{}` must take `&mut self` or `&self`", sig.ident),
            ))
        }
        _ => {
            return Err(syn::Error::new(
                sig.ident.span(),
                format!(
                    "exported method `{}` must take `&mut self` or `&self` (every fn in a \
                     #[netsvc::methods] block is exported: put other functions in another impl block)",
                    sig.ident
                ),
            ))
        }
    }
    let mut with_ctx = false;
    let mut params = Vec::new();
    for (i, arg) in inputs.enumerate() {
        let FnArg::Typed(pt) = arg else {
            unreachable!("receiver only comes first")
        };
        if let Some(r) = service_context_ref(&pt.ty) {
            if i != 0 {
                return Err(syn::Error::new_spanned(
                    pt,
                    "the `ctx: &mut ServiceContext<Self>` parameter must come right after the receiver",
                ));
            }
            if r.mutability.is_none() {
                return Err(syn::Error::new_spanned(
                    r,
                    "take the context as `ctx: &mut ServiceContext<Self>`",
                ));
            }
            with_ctx = true;
            continue;
        }
        if let Type::Reference(r) = &*pt.ty {
            return Err(syn::Error::new_spanned(
                r,
                "parameters of exported methods must be owned types (they arrive in a request), not references: \
                 take `String` for `&str`, `Vec<T>` for `&[T]`, `T` for `&T`",
            ));
        }
        let ident = match &*pt.pat {
            Pat::Ident(pi) => pi.ident.clone(),
            _ => format_ident!("arg{}", i),
        };
        params.push((ident, (*pt.ty).clone()));
    }
    let returns = match &sig.output {
        ReturnType::Default => Returns::Plain(syn::parse_quote!(())),
        ReturnType::Type(_, ty) => {
            if let Some(args) = last_segment_args(ty, "Result") {
                let ok = first_type_arg(args).ok_or_else(|| {
                    syn::Error::new_spanned(ty, "expected Result<T, E> with E: Into<Failure>")
                })?;
                Returns::Result(ok)
            } else if let Some(args) = last_segment_args(ty, "Delayed") {
                let t = first_type_arg(args)
                    .ok_or_else(|| syn::Error::new_spanned(ty, "expected Delayed<T>"))?;
                Returns::Delayed(t)
            } else {
                Returns::Plain((**ty).clone())
            }
        }
    };
    if let (Returns::Delayed(_), ReturnType::Type(_, ty)) = (&returns, &sig.output) {
        if !with_ctx {
            return Err(syn::Error::new_spanned(
                ty,
                "a method returning Delayed<T> must take `ctx: &mut ServiceContext<Self>` (right after the \
                 receiver) to suspend its response with `ctx.suspend_response()`",
            ));
        }
    }
    Ok(Method {
        ident: sig.ident.clone(),
        with_ctx,
        params,
        returns,
    })
}
