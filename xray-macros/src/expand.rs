//! Code generation: the function's body runs inside a run or step, with its arguments recorded
//! before and its result (value, counts, error) after.
//!
//! A synchronous body runs in a closure, so early `return`s and `?` hand their value back to the
//! wrapper; an async body runs in an async block polled inside its X-Ray context on every poll.
//! A panic is recorded and then resumed. `async-trait` methods, already rewritten into a
//! `Box::pin(async move { ... })`, have that inner block instrumented instead.

use crate::attr::{Args, Kind};
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{Block, Expr, ExprAsync, FnArg, ItemFn, Pat, ReturnType, Stmt, Type};
use xray_wire::{Capture, StepType};

/// Entry point of both attributes.
pub(crate) fn instrument(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let span = first_span(&item);
            let message = format!(
                "{} can only be used on a function with a body",
                kind.attribute()
            );
            let error = syn::Error::new(span, message).to_compile_error();
            return quote!(#error #item);
        }
    };
    let result = Args::parse(kind, args).and_then(|args| {
        check(kind, &args, &func)?;
        let registration = if args.replay {
            crate::replay::register(kind, &args, &func)
        } else {
            TokenStream::new()
        };
        let wrapped = expand(kind, &args, func.clone());
        Ok(quote!(#wrapped #registration))
    });
    match result {
        Ok(tokens) => tokens,
        Err(e) => {
            let error = e.to_compile_error();
            quote!(#error #func)
        }
    }
}

fn first_span(tokens: &TokenStream) -> Span {
    tokens
        .clone()
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |t| t.span())
}

/// The named arguments (`self` and destructuring patterns are not recorded).
fn arg_names(func: &ItemFn) -> Vec<syn::Ident> {
    func.sig
        .inputs
        .iter()
        .filter_map(|arg| match arg {
            FnArg::Typed(t) => match &*t.pat {
                Pat::Ident(p) => Some(p.ident.clone()),
                _ => None,
            },
            FnArg::Receiver(_) => None,
        })
        .collect()
}

fn check(kind: Kind, args: &Args, func: &ItemFn) -> syn::Result<()> {
    let mut errors: Option<syn::Error> = None;
    let mut push = |e: syn::Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };
    if let Some(constness) = &func.sig.constness {
        push(syn::Error::new(
            constness.span(),
            format!(
                "{} cannot be used on a `const fn`: recording happens at run time; remove `const` or the attribute",
                kind.attribute()
            ),
        ));
    }
    let names = arg_names(func);
    for skipped in &args.skip {
        if skipped != "self" && !names.iter().any(|n| n == skipped) {
            let known = if names.is_empty() {
                "it has no named arguments".to_string()
            } else {
                format!(
                    "its arguments are: {}",
                    names
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            push(syn::Error::new(
                skipped.span(),
                format!(
                    "`skip({skipped})`: `{}` has no argument named `{skipped}`; {known}",
                    func.sig.ident
                ),
            ));
        }
    }
    if args.replay {
        crate::replay::check(func, &mut push);
    }
    match errors {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// `impl Trait` cannot be written in a `let`: let the compiler infer those parts.
struct InferImpl;

impl VisitMut for InferImpl {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::ImplTrait(t) = ty {
            *ty = Type::Infer(syn::TypeInfer {
                underscore_token: syn::Token![_](t.span()),
            });
        } else {
            syn::visit_mut::visit_type_mut(self, ty);
        }
    }
}

/// The annotation of the variable that holds the result.
fn result_annotation(output: &ReturnType) -> TokenStream {
    match output {
        ReturnType::Default => quote!(: ()),
        ReturnType::Type(_, ty) => {
            let mut ty = (**ty).clone();
            InferImpl.visit_type_mut(&mut ty);
            let ty = ty.into_token_stream();
            quote!(: #ty)
        }
    }
}

/// The `Box::pin(async move { ... })` that `async-trait` leaves as a method's body.
fn async_trait_block(block: &Block) -> Option<(usize, &ExprAsync)> {
    let last = block.stmts.len().checked_sub(1)?;
    let Stmt::Expr(Expr::Call(call), None) = &block.stmts[last] else {
        return None;
    };
    let Expr::Path(path) = &*call.func else {
        return None;
    };
    let is_pin = path.path.segments.last().is_some_and(|s| s.ident == "pin")
        && path.path.segments.iter().any(|s| s.ident == "Box");
    match (is_pin, call.args.len(), call.args.first()) {
        (true, 1, Some(Expr::Async(inner))) => Some((last, inner)),
        _ => None,
    }
}

fn step_type_tokens(t: StepType) -> TokenStream {
    match t {
        StepType::Generate => quote!(::xray::StepType::Generate),
        StepType::Retrieve => quote!(::xray::StepType::Retrieve),
        StepType::Filter => quote!(::xray::StepType::Filter),
        StepType::Rank => quote!(::xray::StepType::Rank),
        StepType::Select => quote!(::xray::StepType::Select),
        StepType::Transform => quote!(::xray::StepType::Transform),
    }
}

fn capture_tokens(c: Option<Capture>) -> TokenStream {
    match c {
        None => quote!(::core::option::Option::None),
        Some(Capture::Minimal) => quote!(::core::option::Option::Some(::xray::Capture::Minimal)),
        Some(Capture::Sample) => quote!(::core::option::Option::Some(::xray::Capture::Sample)),
        Some(Capture::Full) => quote!(::core::option::Option::Some(::xray::Capture::Full)),
    }
}

fn expand(kind: Kind, args: &Args, func: ItemFn) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func.clone();
    let names = arg_names(&func);
    let recorded: Vec<&syn::Ident> = names
        .iter()
        .filter(|n| !args.skip_all && !args.skip.iter().any(|s| s == *n))
        .collect();
    let recorded_keys: Vec<String> = recorded.iter().map(|n| n.to_string()).collect();
    let probes = quote! {
        #[allow(unused_imports)]
        use ::xray::__private::{
            ViaCountable as _, ViaDebug as _, ViaDebugError as _, ViaDisplayError as _,
            ViaNoError as _, ViaNothing as _, ViaOkDebug as _, ViaOkSerialize as _,
            ViaSerialize as _, ViaUncountable as _,
        };
    };
    // A replayable function's arguments are recorded whole, up to the replay limit.
    let (limit, whole) = if args.replay {
        (
            quote!(let __xray_limit = ::xray_replay::hooks::replay_limit();),
            quote! {
                let (__xray_input, __xray_mark) =
                    ::xray_replay::hooks::replay_input(__xray_input, __xray_cap, __xray_limit);
            },
        )
    } else {
        (quote!(let __xray_limit = __xray_cap;), quote!())
    };
    let input = quote! {
        let __xray_cap = ::xray::__private::io_cap();
        #limit
        let __xray_input: ::xray::__private::Fields = {
            #probes
            ::std::vec![
                #( (#recorded_keys, (&&&&&::xray::__private::Probe(&#recorded)).xray_json(__xray_limit)), )*
            ]
        };
        #whole
    };
    // `step` stays the caller's if an argument already has that name.
    let binds_step = kind == Kind::Step && !names.iter().any(|n| n == "step");

    let (prelude, handle, finish) = match kind {
        Kind::Step => {
            let name = args
                .name
                .as_ref()
                .map_or_else(|| sig.ident.to_string(), syn::LitStr::value);
            let step_type = step_type_tokens(args.step_type.unwrap_or(StepType::Transform));
            let capture = capture_tokens(args.capture);
            let counted = &names;
            let step_start = if args.replay {
                quote!(::xray_replay::hooks::step_start_replayable(
                    #name, #step_type, #capture, __xray_input, __xray_mark,
                ))
            } else {
                quote!(::xray::__private::step_start(#name, #step_type, #capture, __xray_input))
            };
            let prelude = quote! {
                #input
                let __xray_in_count: ::core::option::Option<usize> = {
                    #probes
                    ::core::option::Option::None
                    #( .or_else(|| (&&::xray::__private::Probe(&#counted)).xray_count()) )*
                };
                let __xray_guard = #step_start;
                let __xray_handle = __xray_guard.handle();
                let __xray_ctx = ::xray::__private::step_context(&__xray_handle);
            };
            let finish = quote! {
                {
                    #probes
                    ::xray::__private::finish_step(
                        &__xray_handle,
                        (&&&&&::xray::__private::Probe(&__xray_result)).xray_json(__xray_cap),
                        __xray_in_count,
                        (&&::xray::__private::Probe(&__xray_result)).xray_count(),
                        (&&&::xray::__private::Probe(&__xray_result)).xray_error(),
                    );
                }
            };
            (prelude, quote!(__xray_handle), finish)
        }
        Kind::Run => {
            let pipeline = args
                .pipeline
                .as_ref()
                .map_or_else(String::new, syn::LitStr::value);
            let version = match &args.version {
                Some(v) => quote_spanned! {v.span()=>
                    ::std::option::Option::Some(::std::string::ToString::to_string(&(#v)))
                },
                None => quote! { ::std::option::Option::None },
            };
            let run_start = if args.replay {
                quote!(::xray_replay::hooks::run_start_replayable(
                    #pipeline, #version, __xray_input, __xray_mark,
                ))
            } else {
                quote!(::xray::__private::run_start(#pipeline, #version, __xray_input))
            };
            let prelude = quote! {
                #input
                let __xray_guard = #run_start;
                let __xray_handle = __xray_guard.handle();
                let __xray_ctx = ::xray::__private::run_context(&__xray_handle);
            };
            let finish = quote! {
                {
                    #probes
                    ::xray::__private::finish_run(
                        &__xray_handle,
                        (&&&&&::xray::__private::Probe(&__xray_result)).xray_json(__xray_cap),
                        (&&&::xray::__private::Probe(&__xray_result)).xray_error(),
                    );
                }
            };
            (prelude, quote!(__xray_handle), finish)
        }
    };
    let bind_step = if binds_step {
        quote! {
            #[allow(unused_variables)]
            let step: ::xray::StepGuard = ::xray::__private::body_step(__xray_body_step);
        }
    } else {
        quote!(let _ = __xray_body_step;)
    };
    let on_panic = quote! {
        {
            let __xray_panic_handle = #handle.clone();
            move |__xray_message: ::std::string::String| __xray_panic_handle.set_error(__xray_message)
        }
    };
    let body_handle = if kind == Kind::Step {
        quote!(let __xray_body_step = __xray_handle.clone();)
    } else {
        quote!(let __xray_body_step = ();)
    };

    // async-trait methods: instrument the future the method returns.
    if sig.asyncness.is_none() {
        if let Some((index, inner)) = async_trait_block(&block) {
            let before = &block.stmts[..index];
            let inner_attrs = &inner.attrs;
            let inner_capture = &inner.capture;
            let inner_stmts = &inner.block.stmts;
            let pin = match &block.stmts[index] {
                Stmt::Expr(Expr::Call(call), _) => &call.func,
                _ => unreachable!("checked by async_trait_block"),
            };
            return quote! {
                #(#attrs)*
                #vis #sig {
                    #(#before)*
                    #prelude
                    #body_handle
                    let __xray_on_panic = #on_panic;
                    let __xray_inner = #(#inner_attrs)* async #inner_capture {
                        #bind_step
                        #(#inner_stmts)*
                    };
                    #pin(async move {
                        let __xray_guard = __xray_guard;
                        let __xray_result = ::xray::__private::traced(
                            __xray_ctx, __xray_on_panic, __xray_inner,
                        ).await;
                        #finish
                        ::core::mem::drop(__xray_guard);
                        __xray_result
                    })
                }
            };
        }
    }

    let annotation = result_annotation(&sig.output);
    let call = if sig.asyncness.is_some() {
        quote! {
            ::xray::__private::traced(__xray_ctx, #on_panic, async move {
                #bind_step
                #block
            })
            .await
        }
    } else {
        quote! {
            ::xray::__private::call_sync(&__xray_ctx, #on_panic, move || {
                #bind_step
                #block
            })
        }
    };
    if let ReturnType::Type(_, ty) = &sig.output {
        if matches!(**ty, Type::Never(_)) {
            // It never returns: nothing to record after it (a panic is recorded, and unwinding
            // ends the step).
            return quote! {
                #(#attrs)*
                #vis #sig {
                    #prelude
                    #body_handle
                    #call
                }
            };
        }
    }
    quote! {
        #(#attrs)*
        #vis #sig {
            #prelude
            #body_handle
            #[allow(clippy::let_unit_value)]
            let __xray_result #annotation = #call;
            #finish
            ::core::mem::drop(__xray_guard);
            __xray_result
        }
    }
}
