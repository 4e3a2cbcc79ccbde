//! Expanding a macro input into the impls and items it generates.
//!
//! `derive_service` and `methods` read their input with `parse` and check it with `validate`;
//! the other functions generate one item each from what passed.

use crate::parse::{self, Returns, ServiceAttrs};
use crate::validate::{self, Context, Method};
use proc_macro2::{Delimiter, Spacing, TokenStream as TokenStream2, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{DeriveInput, Ident, ItemImpl, Type};

/// `#[derive(Service)]` on `input`: its impls, or the error of an invalid input.
pub(crate) fn derive_service(input: &DeriveInput) -> TokenStream2 {
    let service = parse::service_type(input);
    if let Err(err) = validate::service_type(&service) {
        return err.to_compile_error();
    }
    // An invalid attribute still expands (with the default options), so that its error is the
    // only one: `impl Service for T {}` would otherwise fail too for lack of the derived impls.
    let (attrs, attr_error) = match validate::service_attrs(&service.attrs) {
        Ok(()) => (service.attrs, None),
        Err(err) => (ServiceAttrs::default(), Some(err.to_compile_error())),
    };
    service_impls(service.ident, &attrs, attr_error)
}

/// `#[netsvc::methods]` with `args` on `item`: the block, then its exports or its errors.
pub(crate) fn methods(args: TokenStream2, item: &ItemImpl) -> TokenStream2 {
    let args_error = validate::methods_args(&args)
        .err()
        .map(|err| err.to_compile_error());
    let exports = exports(item).unwrap_or_else(|err| err.to_compile_error());
    quote!(#item #args_error #exports)
}

/// The impls making `ty` a service with the options `attrs`, after the error `attr_error`
/// of its attribute, if any.
fn service_impls(
    ty: &Ident,
    attrs: &ServiceAttrs,
    attr_error: Option<TokenStream2>,
) -> TokenStream2 {
    let p = private();
    // Without `impl Service for T`, the one error is the check below, pointing at the type:
    // - the `Handler<Drain>` and `Descriptor` impls hold only if `T: Service` (`for<'a>` keeps
    //   rustc from rejecting a bound that is trivially false for a concrete type), so they are
    //   absent rather than failing;
    // - `Actor` cannot have that bound (it would make its `Context` ambiguous), so its hooks
    //   call the functions requiring `T: Service` through pointers taken once, by the check.
    let bound = quote!(where for<'__netsvc> #ty: ::netsvc::Service);
    let check = hooks_check(ty);
    let descriptor = descriptor_impl(ty, attrs, &bound);
    quote! {
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

            #descriptor
        };
    }
}

/// The check that `ty` implements `netsvc::Service`, which takes the pointers to the hooks of
/// its `Actor` impl.
fn hooks_check(ty: &Ident) -> TokenStream2 {
    let p = private();
    // Spanned at the type, not at the derive: rustc would suggest implementing the helper trait.
    quote_spanned! {ty.span()=>
        impl<S: ::netsvc::Service> ImplementsNetsvcService for S {
            const HOOKS: __NetsvcHooks<S> = (#p::started::<S>, #p::stopping::<S>);
        }
        const __NETSVC_HOOKS: __NetsvcHooks<#ty> = <#ty as ImplementsNetsvcService>::HOOKS;
    }
}

/// The `Descriptor` impl of `ty`, under `bound`: its options `attrs`, and the dispatch of calls
/// to its exports and their descriptions, if it has any.
fn descriptor_impl(ty: &Ident, attrs: &ServiceAttrs, bound: &TokenStream2) -> TokenStream2 {
    let p = private();
    let name = attrs.name();
    let audience = attrs.audience();
    let groups = attrs.groups();
    quote! {
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
            fn methods() -> &'static [#p::MethodSpec] {
                #[allow(unused_imports)]
                use #p::{ViaExports as _, ViaNothing as _};
                (&&#p::Tag::<Self>::new()).methods()
            }
        }
    }
}

/// The exports of a block and its client, after the errors of its invalid methods; or the
/// error of an invalid block.
fn exports(item: &ItemImpl) -> syn::Result<TokenStream2> {
    let block = parse::impl_block(item);
    let type_ident = validate::impl_block(&block)?;
    // Every invalid method is reported; the valid ones are still exported (and the client
    // generated) so that the errors are only the methods' own.
    let (methods, errors) = validate::methods(&block.fns);
    let errors = errors.map(|err| err.to_compile_error());
    let assertion = service_assertion(block.self_ty);
    let exports_impl = exports_impl(block.self_ty, &methods);
    let client = client(type_ident, &methods);
    Ok(quote! {
        #errors
        #assertion

        #exports_impl

        #client
    })
}

/// The assertion that `self_ty` is a service, failing with an error that says so.
fn service_assertion(self_ty: &Type) -> TokenStream2 {
    // A type that is not a service gets one error, from the assertion, rather than several
    // from the `Exports` impl: that impl holds only if the type is a service (`for<'a>` keeps
    // rustc from rejecting a bound that is trivially false for a concrete type).
    quote_spanned! {self_ty.span()=>
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
    }
}

/// The `Exports` impl of `self_ty`: a call to one of `methods`, dispatched by its name, and
/// their descriptions.
fn exports_impl(self_ty: &Type, methods: &[Method]) -> TokenStream2 {
    let p = private();
    let arms = methods.iter().map(dispatch_arm);
    let specs = methods.iter().map(method_spec);
    quote! {
        impl #p::Exports for #self_ty where for<'__netsvc> #self_ty: ::netsvc::Service {
            const METHODS: &'static [#p::MethodSpec] = &[#(#specs),*];

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
    }
}

/// The description of `method`, for its service's descriptor: static text only.
fn method_spec(method: &Method) -> TokenStream2 {
    let p = private();
    let name = method.ident.to_string();
    let params = method.params.iter().map(|(ident, ty)| {
        let (name, ty) = (ident.to_string(), type_text(ty));
        quote!((#name, #ty))
    });
    let returns = type_text(method.returns.value_type());
    let fallible = matches!(method.returns, Returns::Result(_));
    let delayed = matches!(method.returns, Returns::Delayed(_));
    let doc = match &method.doc {
        Some(line) => quote!(::core::option::Option::Some(#line)),
        None => quote!(::core::option::Option::None),
    };
    quote! {
        #p::MethodSpec {
            name: #name,
            params: &[#(#params),*],
            returns: #returns,
            fallible: #fallible,
            delayed: #delayed,
            doc: #doc,
        }
    }
}

/// A type as its tokens read, spaced as rustfmt would write it: `Vec<String>`,
/// `Option<(u8, String)>`, `std::collections::HashMap<String, i64>`, `[u8; 4]`, `&'static str`.
fn type_text(ty: &Type) -> String {
    let mut out = String::new();
    write_tokens(ty.to_token_stream(), &mut out);
    out.trim_end().to_owned()
}

/// Writes `tokens` at the end of `out`: words apart, punctuation against what it belongs to,
/// a space after `,` and `;`, spaces around `+`, `=` and `->`.
fn write_tokens(tokens: TokenStream2, out: &mut String) {
    let mut op = String::new();
    for token in tokens {
        match token {
            TokenTree::Punct(punct) => {
                op.push(punct.as_char());
                if punct.spacing() == Spacing::Joint && punct.as_char() != '\'' {
                    continue;
                }
                write_op(&op, out);
                op.clear();
            }
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::None => ("", ""),
                };
                if open == "{" {
                    space_after_word(out);
                }
                out.push_str(open);
                write_tokens(group.stream(), out);
                trim_space(out);
                out.push_str(close);
            }
            TokenTree::Ident(ident) => {
                space_after_word(out);
                out.push_str(&ident.to_string());
            }
            TokenTree::Literal(lit) => {
                space_after_word(out);
                out.push_str(&lit.to_string());
            }
        }
    }
    if !op.is_empty() {
        write_op(&op, out);
    }
}

/// Writes one operator (a run of joint punctuation).
fn write_op(op: &str, out: &mut String) {
    match op {
        "," | ";" => {
            trim_space(out);
            out.push_str(op);
            out.push(' ');
        }
        "+" | "=" | "->" => {
            trim_space(out);
            out.push(' ');
            out.push_str(op);
            out.push(' ');
        }
        _ if op.starts_with('>') => {
            trim_space(out);
            out.push_str(op);
        }
        _ => out.push_str(op),
    }
}

/// A space, if `out` ends with a word a next word would run into.
fn space_after_word(out: &mut String) {
    if out.ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '>' || c == ')') {
        out.push(' ');
    }
}

/// Drops the spaces at the end of `out`.
fn trim_space(out: &mut String) {
    out.truncate(out.trim_end().len());
}

/// The arm of the dispatch calling `method`: its arguments decoded, its return value made a
/// reply.
fn dispatch_arm(method: &Method) -> TokenStream2 {
    let p = private();
    let ident = &method.ident;
    let name = ident.to_string();
    let arity = method.params.len();
    let names: Vec<_> = (0..arity).map(|i| format_ident!("__a{}", i)).collect();
    let types: Vec<&Type> = method.params.iter().map(|(_, t)| t).collect();
    let ctx_arg = match method.context {
        Context::Taken => quote!(ctx,),
        Context::NotTaken => quote!(),
    };
    let call = quote!(service.#ident(#ctx_arg #(#names),*));
    let reply = match &method.returns {
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
}

/// The typed client of `methods`, named after the type `type_ident`.
fn client(type_ident: &Ident, methods: &[Method]) -> TokenStream2 {
    let client = format_ident!("{}Client", type_ident);
    let client_doc = format!("Typed client for the exported methods of [`{type_ident}`].");
    let client_methods = methods.iter().map(client_method);
    quote! {
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
    }
}

/// The client's method calling `method`.
fn client_method(method: &Method) -> TokenStream2 {
    let ident = &method.ident;
    let name = ident.to_string();
    let params = method.params.iter().map(|(n, t)| quote!(#n: #t));
    let idents = method.params.iter().map(|(n, _)| n);
    let out = method.returns.value_type();
    let doc = format!("Calls `{name}` on the target service.");
    quote! {
        #[doc = #doc]
        pub fn #ident(&self, #(#params),*) -> ::netsvc::Call<#out> {
            self.endpoint.call(#name, (#(#idents,)*))
        }
    }
}

/// The path of the items of netsvc that generated code uses, which are not its API.
fn private() -> TokenStream2 {
    quote!(::netsvc::__private)
}

#[cfg(test)]
mod tests {
    use super::type_text;

    fn text(ty: &str) -> String {
        type_text(&syn::parse_str(ty).expect("a type"))
    }

    #[test]
    fn types_read_as_written_without_token_spaces() {
        for ty in [
            "i64",
            "()",
            "Vec<String>",
            "Option<(u8, String)>",
            "std::collections::HashMap<String, Vec<i64>>",
            "Vec<Vec<u8>>",
            "[u8; 4]",
            "(u8,)",
            "&'static str",
            "Box<dyn Fn(u8) -> u8 + Send>",
            "<T as Trait>::Output",
            "Result<(), String>",
            "::core::option::Option<u8>",
        ] {
            assert_eq!(text(ty), ty);
        }
    }

    #[test]
    fn spacing_in_the_source_does_not_show() {
        assert_eq!(text("Vec < String >"), "Vec<String>");
        assert_eq!(text("Option<( u8 ,String )>"), "Option<(u8, String)>");
        assert_eq!(text("std :: string :: String"), "std::string::String");
    }
}
