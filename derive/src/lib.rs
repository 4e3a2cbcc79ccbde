//! Macros for netsvc: `#[derive(Service)]` and `#[netsvc::methods]`.
//!
//! Each macro parses its input, validates it (names are checked at compile time with the
//! same rules as `netsvc::ServiceName::new`), and expands; an invalid input gives a compile
//! error pointing at the offending token.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{
    parse_macro_input, DeriveInput, Expr, ExprLit, FnArg, ImplItem, ItemImpl, Lit, LitStr, Pat,
    ReturnType, Type,
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

#[derive(Default)]
struct ServiceAttr {
    name: Option<LitStr>,
    audience: Option<LitStr>,
    groups: Vec<LitStr>,
}

fn check_name(kind: &str, lit: &LitStr, allow_empty: bool) -> syn::Result<()> {
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

fn parse_service_attr(input: &DeriveInput) -> syn::Result<ServiceAttr> {
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

fn expand_service(input: &DeriveInput) -> syn::Result<TokenStream2> {
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.generics,
            "#[derive(Service)] does not support generic types",
        ));
    }
    // An invalid attribute still expands (with the default options), so that its error is the
    // only one: `impl Service for T {}` would otherwise fail too for lack of the derived impls.
    let (attr, attr_error) = match parse_service_attr(input) {
        Ok(attr) => (attr, None),
        Err(err) => (ServiceAttr::default(), Some(err.to_compile_error())),
    };
    let ty = &input.ident;
    let name = attr.name.map(|l| l.value()).unwrap_or_default();
    let audience = attr
        .audience
        .map(|l| l.value())
        .unwrap_or_else(|| "*".to_owned());
    let groups = attr.groups.iter().map(|g| g.value());
    let p = quote!(::netsvc::__private);
    // Without `impl Service for T`, the one error is the check below, pointing at the type:
    // - the `Handler<Drain>` and `Descriptor` impls hold only if `T: Service` (`for<'a>` keeps
    //   rustc from rejecting a bound that is trivially false for a concrete type), so they are
    //   absent rather than failing;
    // - `Actor` cannot have that bound (it would make its `Context` ambiguous), so its hooks
    //   call the functions requiring `T: Service` through pointers taken once, by the check.
    let bound = quote!(where for<'__netsvc> #ty: ::netsvc::Service);
    // Spanned at the type, not at the derive: rustc would suggest implementing the helper trait.
    let check = quote_spanned! {ty.span()=>
        impl<S: ::netsvc::Service> ImplementsNetsvcService for S {
            const HOOKS: __NetsvcHooks<S> = (#p::started::<S>, #p::stopping::<S>);
        }
        const __NETSVC_HOOKS: __NetsvcHooks<#ty> = <#ty as ImplementsNetsvcService>::HOOKS;
    };
    Ok(quote! {
        #attr_error

        const _: () = {
            type __NetsvcHooks<S> = (
                fn(&mut S, &mut ::netsvc::ServiceContext<S>),
                fn(&mut S, &mut ::netsvc::ServiceContext<S>) -> #p::actix::Running,
            );

            #[diagnostic::on_unimplemented(
                message = "`{Self}` derives `Service` but does not implement `netsvc::Service`",
                label = "`#[derive(Service)]` needs `impl Service for {Self} {{}}`",
                note = "the hooks of `Service` (`started`, `report`, ...) all have default bodies"
            )]
            trait ImplementsNetsvcService: #p::actix::Actor<Context = ::netsvc::ServiceContext<Self>> {
                const HOOKS: __NetsvcHooks<Self>;
            }

            #check

            impl #p::actix::Actor for #ty {
                type Context = ::netsvc::ServiceContext<Self>;
                fn started(&mut self, ctx: &mut Self::Context) {
                    (__NETSVC_HOOKS.0)(self, ctx)
                }
                fn stopping(&mut self, ctx: &mut Self::Context) -> #p::actix::Running {
                    (__NETSVC_HOOKS.1)(self, ctx)
                }
            }

            impl #p::actix::Handler<#p::Drain> for #ty #bound {
                type Result = ();
                fn handle(&mut self, _: #p::Drain, ctx: &mut Self::Context) {
                    #p::drain(self, ctx)
                }
            }

            impl #p::Descriptor for #ty #bound {
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
        };
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
    let args = TokenStream2::from(args);
    let args_error = (!args.is_empty()).then(|| {
        syn::Error::new_spanned(
            &args,
            "#[netsvc::methods] takes no arguments; write `#[netsvc::methods]`",
        )
        .to_compile_error()
    });
    let item = parse_macro_input!(input as ItemImpl);
    let expansion = expand_methods(&item).unwrap_or_else(|err| err.to_compile_error());
    quote!(#item #args_error #expansion).into()
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

fn parse_method(f: &syn::ImplItemFn) -> syn::Result<Method> {
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

fn expand_methods(item: &ItemImpl) -> syn::Result<TokenStream2> {
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &item.generics,
            "#[netsvc::methods] does not support generic impls",
        ));
    }
    if let Some((_, path, _)) = &item.trait_ {
        return Err(syn::Error::new_spanned(
            path,
            "#[netsvc::methods] goes on an inherent impl block, not a trait impl",
        ));
    }
    let self_ty = &item.self_ty;
    let Type::Path(type_path) = &**self_ty else {
        return Err(syn::Error::new_spanned(
            self_ty,
            "#[netsvc::methods] expects `impl SomeService { ... }`",
        ));
    };
    let type_ident = &type_path
        .path
        .segments
        .last()
        .expect("a path has a segment")
        .ident;
    let client = format_ident!("{}Client", type_ident);

    // Every invalid method is reported; the valid ones are still exported (and the client
    // generated) so that the errors are only the methods' own.
    let mut methods = Vec::new();
    let mut errors: Option<syn::Error> = None;
    let mut found = false;
    for impl_item in &item.items {
        if let ImplItem::Fn(f) = impl_item {
            found = true;
            match parse_method(f) {
                Ok(m) => methods.push(m),
                Err(err) => match &mut errors {
                    Some(all) => all.combine(err),
                    None => errors = Some(err),
                },
            }
        }
    }
    if !found {
        return Err(syn::Error::new_spanned(
            &item.self_ty,
            "#[netsvc::methods] found no methods to export: add a `fn` taking `&mut self` or `&self`, \
             or remove the attribute",
        ));
    }
    let errors = errors.map(|e| e.to_compile_error());

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
                    ::core::result::Result::Err(f) => return #p::Reply::failure(f),
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
    // A type that is not a service gets one error, from the assertion, rather than several
    // from the `Exports` impl: that impl holds only if the type is a service (`for<'a>` keeps
    // rustc from rejecting a bound that is trivially false for a concrete type).
    let assertion = quote_spanned! {self_ty.span()=>
        const _: () = {
            #[diagnostic::on_unimplemented(
                message = "`{Self}` is not a netsvc service",
                label = "#[netsvc::methods] needs a service here",
                note = "a service has `#[derive(Service)]` and `impl Service for {Self} {{}}`"
            )]
            trait IsNetsvcService {}
            impl<T: ::netsvc::Service> IsNetsvcService for T {}
            fn is_netsvc_service<T: IsNetsvcService>() {}
            let _ = is_netsvc_service::<#self_ty>;
        };
    };
    Ok(quote! {
        #errors
        #assertion

        impl #p::Exports for #self_ty where for<'__netsvc> #self_ty: ::netsvc::Service {
            fn dispatch(
                service: &mut Self,
                ctx: &mut ::netsvc::ServiceContext<Self>,
                method: &str,
                args: #p::Payload,
            ) -> #p::Reply {
                let _ = &ctx;
                match method {
                    #(#arms)*
                    _ => #p::Reply::failure(#p::method_unavailable(ctx.binding().name().as_str(), method)),
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
