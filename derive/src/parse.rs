//! Reading a macro input from syn into a model of what was written.
//!
//! Reading fails only on what cannot be read. What reads but breaks a rule (a name with a
//! space, say) is kept as written for the checks of `validate`, which report faults in source
//! order: for that, an option that cannot be read does not lose the ones read before it.

use quote::format_ident;
use syn::meta::ParseNestedMeta;
use syn::{
    Attribute, DeriveInput, Expr, ExprLit, FnArg, GenericArgument, Generics, Ident, ImplItem,
    ImplItemFn, ItemImpl, Lit, LitStr, Pat, PatType, Path, PathArguments, ReturnType, Signature,
    Type, TypeReference,
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

/// An impl block under `#[netsvc::methods]`, as written.
pub(crate) struct ImplBlock<'a> {
    /// The block's generics, which it may not have.
    pub(crate) generics: &'a Generics,
    /// The trait it implements, if it is a trait impl (which it may not be).
    pub(crate) trait_path: Option<&'a Path>,
    /// The type it is on.
    pub(crate) self_ty: &'a Type,
    /// The name of that type if it is a path (`impl Calculator`): the client is named after it.
    pub(crate) type_name: Option<&'a Ident>,
    /// Every `fn` of the block, in order: all are to be exported.
    pub(crate) fns: Vec<FnItem<'a>>,
}

/// A `fn` of a `#[netsvc::methods]` block, as written.
pub(crate) struct FnItem<'a> {
    /// Its signature.
    pub(crate) sig: &'a Signature,
    /// How it takes `self`.
    pub(crate) receiver: Receiver<'a>,
    /// Its parameters after the receiver, in order.
    pub(crate) params: Vec<Param<'a>>,
    /// What it returns, or why that cannot be read.
    pub(crate) returns: syn::Result<Returns>,
    /// The first line of its doc comment that is not blank, trimmed.
    pub(crate) doc: Option<String>,
}

/// How a `fn` takes `self`.
pub(crate) enum Receiver<'a> {
    /// As `&self` or `&mut self`.
    Borrowed,
    /// Any other way: `self`, `mut self`, `self: Box<Self>`, even `self: &Self`.
    Other(&'a syn::Receiver),
    /// Not at all: an associated function.
    Missing,
}

/// A parameter of a `fn` after its receiver.
pub(crate) enum Param<'a> {
    /// A reference to the service's context, as in `ctx: &mut ServiceContext<Self>`.
    Context {
        /// The whole parameter.
        arg: &'a PatType,
        /// Its type.
        ty: &'a TypeReference,
    },
    /// An argument of the call.
    Arg {
        /// Its name: the pattern's if that is an identifier, else one made of its position.
        ident: Ident,
        /// Its type.
        ty: &'a Type,
    },
}

/// What an exported method returns.
#[derive(Clone)]
pub(crate) enum Returns {
    /// A value (`()` without a return type), sent back as it is.
    Plain(Type),
    /// `Result<T, E>` with `E: Into<Failure>`, holding `T`: an error is sent back as an
    /// application failure.
    Result(Type),
    /// `Delayed<T>`, holding `T`: the value is sent later, through `ctx.suspend_response()`.
    Delayed(Type),
}

impl Returns {
    /// The type of the value the caller gets.
    pub(crate) fn value_type(&self) -> &Type {
        match self {
            Returns::Plain(ty) | Returns::Result(ty) | Returns::Delayed(ty) => ty,
        }
    }
}

/// Reads an impl block under `#[netsvc::methods]`.
pub(crate) fn impl_block(item: &ItemImpl) -> ImplBlock<'_> {
    let type_name = match &*item.self_ty {
        Type::Path(path) => {
            let last = path.path.segments.last().expect("a path has a segment");
            Some(&last.ident)
        }
        _ => None,
    };
    let fns = item.items.iter().filter_map(|item| match item {
        ImplItem::Fn(f) => Some(fn_item(f)),
        _ => None,
    });
    ImplBlock {
        generics: &item.generics,
        trait_path: item.trait_.as_ref().map(|(_, path, _)| path),
        self_ty: &item.self_ty,
        type_name,
        fns: fns.collect(),
    }
}

/// Reads a `fn` of the block.
fn fn_item(f: &ImplItemFn) -> FnItem<'_> {
    let sig = &f.sig;
    let mut inputs = sig.inputs.iter().peekable();
    let receiver = match inputs.next_if(|arg| matches!(arg, FnArg::Receiver(_))) {
        Some(FnArg::Receiver(r)) if r.reference.is_some() => Receiver::Borrowed,
        Some(FnArg::Receiver(r)) => Receiver::Other(r),
        _ => Receiver::Missing,
    };
    FnItem {
        sig,
        receiver,
        params: inputs.enumerate().map(|(i, arg)| param(i, arg)).collect(),
        returns: returns(&sig.output),
        doc: first_doc_line(&f.attrs),
    }
}

/// The first line that is not blank of the doc comment in `attrs`, trimmed: `/// text` and
/// `/** text */` are `#[doc = "..."]` attributes; a doc attribute that is not a string literal
/// (`#[doc = include_str!(..)]`) is skipped.
fn first_doc_line(attrs: &[Attribute]) -> Option<String> {
    attrs
        .iter()
        .filter(|attr| attr.path().is_ident("doc"))
        .filter_map(|attr| match &attr.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .flat_map(|text| text.lines().map(doc_line).collect::<Vec<_>>())
        .find(|line| !line.is_empty())
}

/// A line of a doc comment, trimmed, without the ` * ` that starts the inner lines of a
/// `/** */` comment.
fn doc_line(line: &str) -> String {
    let line = line.trim();
    let line = match line.strip_prefix('*') {
        Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => rest.trim(),
        _ => line,
    };
    line.to_owned()
}

/// Reads the parameter at `position` after the receiver.
fn param(position: usize, arg: &FnArg) -> Param<'_> {
    let FnArg::Typed(arg) = arg else {
        unreachable!("receiver only comes first")
    };
    if let Some(ty) = service_context_ref(&arg.ty) {
        return Param::Context { arg, ty };
    }
    let ident = match &*arg.pat {
        Pat::Ident(pat) => pat.ident.clone(),
        _ => format_ident!("arg{}", position),
    };
    Param::Arg { ident, ty: &arg.ty }
}

/// Reads a return type: `T`, `Result<T, E>` or `Delayed<T>`.
fn returns(output: &ReturnType) -> syn::Result<Returns> {
    let ReturnType::Type(_, ty) = output else {
        return Ok(Returns::Plain(syn::parse_quote!(())));
    };
    if let Some(args) = last_segment_args(ty, "Result") {
        let ok = first_type_arg(args).ok_or_else(|| {
            syn::Error::new_spanned(ty, "expected Result<T, E> with E: Into<Failure>")
        })?;
        Ok(Returns::Result(ok))
    } else if let Some(args) = last_segment_args(ty, "Delayed") {
        let t = first_type_arg(args)
            .ok_or_else(|| syn::Error::new_spanned(ty, "expected Delayed<T>"))?;
        Ok(Returns::Delayed(t))
    } else {
        Ok(Returns::Plain((**ty).clone()))
    }
}

/// The generic arguments of `ty`'s last path segment, if that segment is `name`.
fn last_segment_args<'a>(ty: &'a Type, name: &str) -> Option<&'a PathArguments> {
    let Type::Path(path) = ty else { return None };
    let seg = path.path.segments.last()?;
    (seg.ident == name).then_some(&seg.arguments)
}

/// The first type among generic arguments `<..>`.
fn first_type_arg(args: &PathArguments) -> Option<Type> {
    let PathArguments::AngleBracketed(ab) = args else {
        return None;
    };
    ab.args.iter().find_map(|a| match a {
        GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    })
}

/// `&ServiceContext<..>` or `&mut ServiceContext<..>`.
fn service_context_ref(ty: &Type) -> Option<&TypeReference> {
    match ty {
        Type::Reference(r) if last_segment_args(&r.elem, "ServiceContext").is_some() => Some(r),
        _ => None,
    }
}
