//! Macros for netsvc: `#[derive(Service)]` and `#[netsvc::methods]`.
//!
//! Each macro parses its input, validates it (names are checked at compile time with the
//! same rules as `netsvc::ServiceName::new`), and expands; an invalid input gives a compile
//! error pointing at the offending token.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{
    parse_macro_input, DeriveInput, Expr, ExprLit, FnArg, ImplItem, ItemImpl, Lit, LitStr, Pat, ReturnType, Type,
};

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
    match expand_service(&input) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

struct ServiceAttr {
    name: Option<LitStr>,
    audience: Option<LitStr>,
    groups: Vec<LitStr>,
}

fn check_name(kind: &str, lit: &LitStr, allow_empty: bool) -> syn::Result<()> {
    let value = lit.value();
    if value.is_empty() && !allow_empty {
        return Err(syn::Error::new(lit.span(), format!("invalid {kind}: must not be empty")));
    }
    if let Some(c) = value.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(syn::Error::new(
            lit.span(),
            format!("invalid {kind} {value:?}: contains {c:?} (no whitespace or control characters)"),
        ));
    }
    Ok(())
}

fn parse_service_attr(input: &DeriveInput) -> syn::Result<ServiceAttr> {
    let mut attr = ServiceAttr { name: None, audience: None, groups: Vec::new() };
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
                    return Err(syn::Error::new(expr.span(), "expected `groups = [\"a\", \"b\"]`"));
                };
                for elem in array.elems {
                    match elem {
                        Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) => {
                            check_name("group name", &s, false)?;
                            attr.groups.push(s);
                        }
                        other => return Err(syn::Error::new(other.span(), "group names must be string literals")),
                    }
                }
            } else {
                return Err(meta.error("unknown service attribute; expected `name`, `audience` or `groups`"));
            }
            Ok(())
        })?;
    }
    Ok(attr)
}

fn expand_service(input: &DeriveInput) -> syn::Result<TokenStream2> {
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new(input.generics.span(), "#[derive(Service)] does not support generic types"));
    }
    let attr = parse_service_attr(input)?;
    let ty = &input.ident;
    let name = attr.name.map(|l| l.value()).unwrap_or_default();
    let audience = attr.audience.map(|l| l.value()).unwrap_or_else(|| "*".to_owned());
    let groups = attr.groups.iter().map(|g| g.value());
    let p = quote!(::netsvc::__private);
    Ok(quote! {
        impl #p::actix::Actor for #ty {
            type Context = ::netsvc::ServiceContext<Self>;
            fn started(&mut self, ctx: &mut Self::Context) {
                #p::started(self, ctx)
            }
            fn stopping(&mut self, ctx: &mut Self::Context) -> #p::actix::Running {
                #p::stopping(self, ctx)
            }
        }

        impl #p::actix::Handler<#p::Drain> for #ty {
            type Result = ();
            fn handle(&mut self, _: #p::Drain, ctx: &mut Self::Context) {
                #p::drain(self, ctx)
            }
        }

        impl #p::Descriptor for #ty {
            fn options() -> #p::ServiceOptions {
                #p::ServiceOptions {
                    name: #p::service_name(#name),
                    audience: #p::audience(#audience),
                    groups: [#(#groups),*].into_iter().filter_map(#p::group_name).collect(),
                }
            }
            fn dispatch(
                service: &mut Self,
                ctx: &mut ::netsvc::ServiceContext<Self>,
                method: &str,
                args: #p::Payload,
            ) -> #p::Reply {
                #[allow(unused_imports)]
                use #p::{ViaExports as _, ViaNothing as _};
                (&&#p::Tag::<Self>::new()).dispatcher()(service, ctx, method, args)
            }
        }
    })
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
#[proc_macro_attribute]
pub fn methods(args: TokenStream, input: TokenStream) -> TokenStream {
    if !args.is_empty() {
        let err = syn::Error::new(Span::call_site(), "#[netsvc::methods] takes no arguments");
        return err.to_compile_error().into();
    }
    let item = parse_macro_input!(input as ItemImpl);
    match expand_methods(&item) {
        Ok(tokens) => quote!(#item #tokens).into(),
        Err(err) => {
            let err = err.to_compile_error();
            quote!(#item #err).into()
        }
    }
}

enum Returns {
    Plain(Type),
    Result(Type),
    Delayed(Type),
}

struct Method {
    ident: syn::Ident,
    with_ctx: bool,
    params: Vec<(syn::Ident, Type)>,
    returns: Returns,
}

fn last_segment_args<'a>(ty: &'a Type, name: &str) -> Option<&'a syn::PathArguments> {
    let Type::Path(path) = ty else { return None };
    let seg = path.path.segments.last()?;
    (seg.ident == name).then_some(&seg.arguments)
}

fn first_type_arg(args: &syn::PathArguments) -> Option<Type> {
    let syn::PathArguments::AngleBracketed(ab) = args else { return None };
    ab.args.iter().find_map(|a| match a {
        syn::GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    })
}

fn is_service_context(ty: &Type) -> bool {
    match ty {
        Type::Reference(r) => r.mutability.is_some() && last_segment_args(&r.elem, "ServiceContext").is_some(),
        _ => false,
    }
}

fn parse_method(f: &syn::ImplItemFn) -> syn::Result<Method> {
    let sig = &f.sig;
    if sig.asyncness.is_some() {
        return Err(syn::Error::new(
            sig.asyncness.span(),
            "exported methods cannot be async: use ctx.suspend_response() and return Delayed<T>",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(sig.generics.span(), "exported methods cannot be generic"));
    }
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() => {}
        _ => {
            return Err(syn::Error::new(
                sig.ident.span(),
                format!("exported method `{}` must take `&mut self` or `&self`", sig.ident),
            ))
        }
    }
    let mut with_ctx = false;
    let mut params = Vec::new();
    for (i, arg) in inputs.enumerate() {
        let FnArg::Typed(pt) = arg else { unreachable!("receiver only comes first") };
        if i == 0 && is_service_context(&pt.ty) {
            with_ctx = true;
            continue;
        }
        if let Type::Reference(r) = &*pt.ty {
            return Err(syn::Error::new(
                r.span(),
                "parameters of exported methods must be owned types (they arrive in a request), not references",
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
                let ok = first_type_arg(args)
                    .ok_or_else(|| syn::Error::new(ty.span(), "expected Result<T, E> with E: Into<Failure>"))?;
                Returns::Result(ok)
            } else if let Some(args) = last_segment_args(ty, "Delayed") {
                let t = first_type_arg(args).ok_or_else(|| syn::Error::new(ty.span(), "expected Delayed<T>"))?;
                Returns::Delayed(t)
            } else {
                Returns::Plain((**ty).clone())
            }
        }
    };
    if matches!(returns, Returns::Delayed(_)) && !with_ctx {
        return Err(syn::Error::new(
            sig.output.span(),
            "a method returning Delayed<T> must take `ctx: &mut ServiceContext<Self>` to suspend its response",
        ));
    }
    Ok(Method { ident: sig.ident.clone(), with_ctx, params, returns })
}

fn expand_methods(item: &ItemImpl) -> syn::Result<TokenStream2> {
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new(item.generics.span(), "#[netsvc::methods] does not support generic impls"));
    }
    if let Some((_, path, _)) = &item.trait_ {
        return Err(syn::Error::new(
            path.span(),
            "#[netsvc::methods] goes on an inherent impl block, not a trait impl",
        ));
    }
    let self_ty = &item.self_ty;
    let Type::Path(type_path) = &**self_ty else {
        return Err(syn::Error::new(self_ty.span(), "#[netsvc::methods] expects `impl SomeService { ... }`"));
    };
    let type_ident = &type_path.path.segments.last().expect("a path has a segment").ident;
    let client = format_ident!("{}Client", type_ident);

    let mut methods = Vec::new();
    for impl_item in &item.items {
        if let ImplItem::Fn(f) = impl_item {
            methods.push(parse_method(f)?);
        }
    }
    if methods.is_empty() {
        return Err(syn::Error::new(item.self_ty.span(), "#[netsvc::methods] found no methods to export"));
    }

    let p = quote!(::netsvc::__private);
    let arms = methods.iter().map(|m| {
        let ident = &m.ident;
        let name = ident.to_string();
        let arity = m.params.len();
        let names: Vec<_> = (0..arity).map(|i| format_ident!("__a{}", i)).collect();
        let types: Vec<&Type> = m.params.iter().map(|(_, t)| t).collect();
        let ctx_arg = if m.with_ctx { quote!(ctx,) } else { quote!() };
        let call = quote!(service.#ident(#ctx_arg #(#names),*));
        let reply = match &m.returns {
            Returns::Plain(_) => quote!(#p::IntoReply::into_reply(#p::Plain(#call))),
            Returns::Result(_) | Returns::Delayed(_) => quote!(#p::IntoReply::into_reply(#call)),
        };
        quote_spanned! {ident.span()=>
            #name => {
                let (#(#names,)*): (#(#types,)*) = match #p::decode_args::<(#(#types,)*)>(args, #arity, #name) {
                    ::core::result::Result::Ok(v) => v,
                    ::core::result::Result::Err(f) => return #p::Reply::Now(::core::result::Result::Err(f)),
                };
                #reply
            }
        }
    });

    let client_methods = methods.iter().map(|m| {
        let ident = &m.ident;
        let name = ident.to_string();
        let params = m.params.iter().map(|(n, t)| quote!(#n: #t));
        let idents = m.params.iter().map(|(n, _)| n);
        let out = match &m.returns {
            Returns::Plain(t) | Returns::Result(t) | Returns::Delayed(t) => t,
        };
        let doc = format!("Calls `{name}` on the target service.");
        quote! {
            #[doc = #doc]
            pub fn #ident(&self, #(#params),*) -> ::netsvc::Call<#out> {
                self.endpoint.call(#name, (#(#idents,)*))
            }
        }
    });

    let client_doc = format!("Typed client for the exported methods of [`{type_ident}`].");
    Ok(quote! {
        impl #p::Exports for #self_ty {
            fn dispatch(
                service: &mut Self,
                ctx: &mut ::netsvc::ServiceContext<Self>,
                method: &str,
                args: #p::Payload,
            ) -> #p::Reply {
                let _ = &ctx;
                match method {
                    #(#arms)*
                    _ => #p::Reply::Now(::core::result::Result::Err(
                        #p::method_unavailable(ctx.binding().name().as_str(), method),
                    )),
                }
            }
        }

        #[doc = #client_doc]
        #[derive(Clone, Debug)]
        pub struct #client {
            endpoint: ::netsvc::Endpoint,
        }

        impl #client {
            /// A client calling through `endpoint`.
            pub fn new(endpoint: ::netsvc::Endpoint) -> Self {
                Self { endpoint }
            }

            /// The endpoint this client calls through.
            pub fn endpoint(&self) -> &::netsvc::Endpoint {
                &self.endpoint
            }

            #(#client_methods)*
        }
    })
}
