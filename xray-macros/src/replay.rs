//! `replay`: what a replayable function must be (checked), and its entry in the process-wide
//! registry (`inventory::submit!`): a function that reads each argument back — recorded ones
//! from the captured input, skipped ones from the caller's `ReplayContext` — and gives the call.

use crate::attr::{Args, Kind};
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{FnArg, GenericParam, ItemFn, Pat, Type};

/// Why this function cannot be replayed, one error per reason.
pub(crate) fn check(func: &ItemFn, push: &mut dyn FnMut(syn::Error)) {
    let sig = &func.sig;
    if let Some(a) = &sig.asyncness {
        push(syn::Error::new(
            a.span(),
            "`replay` works on synchronous functions: a replay calls the function from \
             `xray_replay`, outside any async runtime",
        ));
    }
    for param in &sig.generics.params {
        if !matches!(param, GenericParam::Lifetime(_)) {
            push(syn::Error::new(
                param.span(),
                "`replay` needs concrete argument types to read them back: remove the \
                 generic parameter or the `replay`",
            ));
        }
    }
    for arg in &sig.inputs {
        match arg {
            FnArg::Receiver(r) => push(syn::Error::new(
                r.span(),
                "`replay` works on free functions: a replay has no `self` to call a method on",
            )),
            FnArg::Typed(t) => {
                if !matches!(&*t.pat, Pat::Ident(_)) {
                    push(syn::Error::new(
                        t.pat.span(),
                        "`replay` reads arguments back by name: bind this one to a name",
                    ));
                }
                if contains_impl_trait(&t.ty) {
                    push(syn::Error::new(
                        t.ty.span(),
                        "`replay` needs a concrete type to read this argument back, not `impl Trait`",
                    ));
                }
            }
        }
    }
}

fn contains_impl_trait(ty: &Type) -> bool {
    struct Find(bool);
    impl syn::visit::Visit<'_> for Find {
        fn visit_type_impl_trait(&mut self, _: &syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut find = Find(false);
    syn::visit::Visit::visit_type(&mut find, ty);
    find.0
}

/// Every lifetime becomes `'static`: the owned values read back borrow from nothing.
struct StaticLifetimes;

impl VisitMut for StaticLifetimes {
    fn visit_lifetime_mut(&mut self, l: &mut syn::Lifetime) {
        *l = syn::Lifetime::new("'static", l.span());
    }
}

/// How an argument is passed: the owned type read back, and how the call takes it.
enum Passing {
    Value,
    Shared,
    Unique,
}

fn owned(ty: &Type) -> (Type, Passing) {
    let (mut owned, passing) = match ty {
        Type::Reference(r) => {
            let elem = &*r.elem;
            let passing = if r.mutability.is_some() {
                Passing::Unique
            } else {
                Passing::Shared
            };
            let owned: Type = match elem {
                Type::Path(p) if p.qself.is_none() && p.path.is_ident("str") => {
                    syn::parse_quote_spanned!(elem.span()=> ::std::string::String)
                }
                Type::Slice(s) => {
                    let item = &s.elem;
                    syn::parse_quote_spanned!(elem.span()=> ::std::vec::Vec<#item>)
                }
                other => other.clone(),
            };
            (owned, passing)
        }
        other => (other.clone(), Passing::Value),
    };
    StaticLifetimes.visit_type_mut(&mut owned);
    (owned, passing)
}

/// The registry entry of a replayable function.
pub(crate) fn register(kind: Kind, args: &Args, func: &ItemFn) -> TokenStream {
    let ident = &func.sig.ident;
    let (kind_tokens, key) = match kind {
        Kind::Run => (
            quote!(::xray_replay::ReplayKind::Run),
            args.pipeline
                .as_ref()
                .map_or_else(String::new, syn::LitStr::value),
        ),
        Kind::Step => (
            quote!(::xray_replay::ReplayKind::Step),
            args.name
                .as_ref()
                .map_or_else(|| ident.to_string(), syn::LitStr::value),
        ),
    };
    let mut reads = Vec::new();
    let mut passes = Vec::new();
    for (i, arg) in func.sig.inputs.iter().enumerate() {
        let FnArg::Typed(t) = arg else { continue };
        let Pat::Ident(p) = &*t.pat else { continue };
        let name = p.ident.to_string();
        let var = format_ident!("__xray_a{i}");
        let (owned, passing) = owned(&t.ty);
        let skipped = args.skip_all || args.skip.iter().any(|s| s == &p.ident);
        if skipped {
            reads.push(quote_spanned! {t.ty.span()=>
                let #var = __xray_args.provided::<#owned>(#name)?;
            });
            passes.push(match passing {
                Passing::Value => quote!(::core::clone::Clone::clone(#var)),
                Passing::Shared => quote!(#var),
                Passing::Unique => quote!(&mut ::core::clone::Clone::clone(#var)),
            });
        } else {
            reads.push(quote_spanned! {t.ty.span()=>
                #[allow(unused_mut)]
                let mut #var = __xray_args.recorded::<#owned>(#name)?;
            });
            passes.push(match passing {
                Passing::Value => quote!(#var),
                Passing::Shared => quote!(&#var),
                Passing::Unique => quote!(&mut #var),
            });
        }
    }
    let function = format!("{ident}");
    quote! {
        ::xray_replay::hooks::inventory::submit! {
            ::xray_replay::Replayable {
                kind: #kind_tokens,
                key: #key,
                function: ::core::concat!(::core::module_path!(), "::", #function),
                prepare: {
                    #[allow(clippy::needless_borrow, clippy::unnecessary_mut_passed)]
                    fn __xray_prepare<'a>(
                        __xray_args: &'a ::xray_replay::ReplayArgs<'a>,
                    ) -> ::core::result::Result<
                        ::std::boxed::Box<dyn ::core::ops::FnOnce() + 'a>,
                        ::xray_replay::ReplayError,
                    > {
                        #(#reads)*
                        ::core::result::Result::Ok(::std::boxed::Box::new(move || {
                            let _ = #ident(#(#passes),*);
                        }))
                    }
                    __xray_prepare as ::xray_replay::hooks::Prepare
                },
            }
        }
    }
}
