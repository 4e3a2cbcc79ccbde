//! Reading a macro input from syn into a model of what was written.
//!
//! Reading fails only on what cannot be read. What reads but breaks a rule (a name with a
//! space, say) is kept as written for the checks of `validate`, which report faults in source
//! order: for that, an option that cannot be read does not lose the ones read before it.

use quote::format_ident;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{
    Attribute, DeriveInput, Expr, ExprLit, FnArg, Generics, Ident, Lit, LitStr, Pat, ReturnType,
    Type,
};

/// A type deriving `Service`, as written.
pub(crate) struct ServiceType<'a> {
    /// The type's name.
    pub(crate) ident: &'a Ident,
    /// The type's generics, which a service may not have.
    pub(crate) generics: &'a Generics,
    /// The options of its `#[service(...)]` attributes.
    pub(crate) attrs: ServiceAttrs,
}

/// The options of the `#[service(...)]` attributes of a type, in the order written.
#[derive(Default)]
pub(crate) struct ServiceAttrs {
    /// The options read, attribute after attribute.
    pub(crate) options: Vec<ServiceOption>,
    /// Why reading stopped, if it did before the end: the options before it were read.
    pub(crate) unreadable: Option<syn::Error>,
}

/// One option of `#[service(...)]`; `groups = [...]` gives one per group.
pub(crate) struct ServiceOption {
    /// Which option it is.
    pub(crate) key: OptionKey,
    /// Its value as written.
    pub(crate) lit: LitStr,
}

/// The options of `#[service(...)]`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum OptionKey {
    /// `name = "..."`: the service's name.
    Name,
    /// `audience = "..."`: who may call the service.
    Audience,
    /// One of the names of `groups = [...]`: the groups the service belongs to.
    Group,
}

impl ServiceAttrs {
    /// The service's name: the last one given, or the empty name (an anonymous service).
    pub(crate) fn name(&self) -> String {
        self.values(OptionKey::Name).last().unwrap_or_default()
    }

    /// The service's audience: the last one given, or `"*"` (everyone).
    pub(crate) fn audience(&self) -> String {
        self.values(OptionKey::Audience)
            .last()
            .unwrap_or_else(|| "*".to_owned())
    }

    /// The service's groups: those of every `groups = [...]`, in order.
    pub(crate) fn groups(&self) -> Vec<String> {
        self.values(OptionKey::Group).collect()
    }

    /// The values given to `key`, in order.
    fn values(&self, key: OptionKey) -> impl Iterator<Item = String> + '_ {
        self.options
            .iter()
            .filter(move |option| option.key == key)
            .map(|option| option.lit.value())
    }
}

/// Reads the type deriving `Service`.
pub(crate) fn service_type(input: &DeriveInput) -> ServiceType<'_> {
    ServiceType {
        ident: &input.ident,
        generics: &input.generics,
        attrs: service_attrs(&input.attrs),
    }
}

/// Reads the options of the `#[service(...)]` attributes among `attrs`, up to the first that
/// cannot be read.
fn service_attrs(attrs: &[Attribute]) -> ServiceAttrs {
    let mut read = ServiceAttrs::default();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("service")) {
        if let Err(err) = attr.parse_nested_meta(|meta| service_option(&meta, &mut read.options)) {
            read.unreadable = Some(err);
            break;
        }
    }
    read
}

/// Reads the option `meta` (`key = value`) into `options`.
fn service_option(meta: &ParseNestedMeta, options: &mut Vec<ServiceOption>) -> syn::Result<()> {
    if meta.path.is_ident("groups") {
        return groups(meta.value()?.parse()?, options);
    }
    let key = if meta.path.is_ident("name") {
        OptionKey::Name
    } else if meta.path.is_ident("audience") {
        OptionKey::Audience
    } else {
        return Err(
            meta.error("unknown service attribute; expected `name`, `audience` or `groups`")
        );
    };
    let lit = meta.value()?.parse()?;
    options.push(ServiceOption { key, lit });
    Ok(())
}

/// Reads the groups of `groups = [...]` into `options`, up to the first that is not a string
/// literal.
fn groups(expr: Expr, options: &mut Vec<ServiceOption>) -> syn::Result<()> {
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
            }) => options.push(ServiceOption {
                key: OptionKey::Group,
                lit: s,
            }),
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "group names must be string literals, as in `groups = [\"a\", \"b\"]`",
                ))
            }
        }
    }
    Ok(())
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
