//! Parsing the attributes' arguments: one spanned error per mistake, all reported at once.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Ident, Lit, LitStr, Meta, Token};
use xray_wire::{Capture, StepType};

/// Which attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Run,
    Step,
}

impl Kind {
    pub(crate) fn attribute(self) -> &'static str {
        match self {
            Kind::Run => "#[xray::run]",
            Kind::Step => "#[xray::step]",
        }
    }

    fn accepted(self) -> &'static [&'static str] {
        match self {
            Kind::Run => &["pipeline", "version", "skip", "skip_all", "replay"],
            Kind::Step => &["step_type", "name", "capture", "skip", "skip_all", "replay"],
        }
    }
}

/// What the attribute said.
pub(crate) struct Args {
    pub(crate) pipeline: Option<LitStr>,
    /// Any expression whose value is `Display` (`env!("CARGO_PKG_VERSION")`, a `const`…).
    pub(crate) version: Option<Expr>,
    pub(crate) step_type: Option<StepType>,
    pub(crate) name: Option<LitStr>,
    pub(crate) capture: Option<Capture>,
    pub(crate) skip: Vec<Ident>,
    pub(crate) skip_all: bool,
    /// Arguments recorded whole and the function registered, for `xray-replay`.
    pub(crate) replay: bool,
}

/// Collects errors so every mistake is reported, not just the first.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }
}

fn nearest(given: &str, names: &[&'static str]) -> Option<&'static str> {
    names
        .iter()
        .map(|n| (strsim::damerau_levenshtein(given, n), *n))
        .filter(|(d, n)| *d <= 2.max(n.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn string_value(name: &str, value: &Expr, example: &str) -> syn::Result<LitStr> {
    match value {
        // A literal passed in by a `macro_rules!` arrives wrapped in an invisible group.
        Expr::Group(group) => string_value(name, &group.expr, example),
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s.clone()),
        other => Err(syn::Error::new(
            other.span(),
            format!("`{name}` takes a string literal, e.g. `{name} = \"{example}\"`"),
        )),
    }
}

impl Args {
    pub(crate) fn parse(kind: Kind, tokens: TokenStream) -> syn::Result<Args> {
        let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens)?;
        let mut args = Args {
            pipeline: None,
            version: None,
            step_type: None,
            name: None,
            capture: None,
            skip: Vec::new(),
            skip_all: false,
            replay: false,
        };
        let mut errors = Errors::default();
        let mut seen: Vec<String> = Vec::new();
        for meta in &metas {
            let path = meta.path();
            let Some(ident) = path.get_ident() else {
                errors.push(syn::Error::new(path.span(), "expected an argument name"));
                continue;
            };
            let key = ident.to_string();
            if !kind.accepted().contains(&key.as_str()) {
                let hint = nearest(&key, kind.accepted())
                    .map(|n| format!(" (did you mean `{n}`?)"))
                    .unwrap_or_default();
                errors.push(syn::Error::new(
                    ident.span(),
                    format!(
                        "unknown argument `{key}` for {}{hint}; expected one of: {}",
                        kind.attribute(),
                        kind.accepted().join(", ")
                    ),
                ));
                continue;
            }
            if seen.contains(&key) {
                errors.push(syn::Error::new(
                    ident.span(),
                    format!("`{key}` is given more than once"),
                ));
                continue;
            }
            seen.push(key.clone());
            let result = match (key.as_str(), meta) {
                ("skip_all", Meta::Path(_)) => {
                    args.skip_all = true;
                    Ok(())
                }
                ("replay", Meta::Path(_)) => {
                    args.replay = true;
                    Ok(())
                }
                ("skip", Meta::List(list)) => list
                    .parse_args_with(Punctuated::<Ident, Token![,]>::parse_terminated)
                    .map(|idents| args.skip.extend(idents)),
                ("pipeline", Meta::NameValue(nv)) => {
                    string_value("pipeline", &nv.value, "competitor_selection").and_then(|s| {
                        if s.value().is_empty() {
                            Err(syn::Error::new(
                                s.span(),
                                "the pipeline name must not be empty",
                            ))
                        } else {
                            args.pipeline = Some(s);
                            Ok(())
                        }
                    })
                }
                ("version", Meta::NameValue(nv)) => {
                    args.version = Some(nv.value.clone());
                    Ok(())
                }
                ("name", Meta::NameValue(nv)) => {
                    string_value("name", &nv.value, "filter_candidates").and_then(|s| {
                        if s.value().is_empty() {
                            Err(syn::Error::new(s.span(), "the step name must not be empty"))
                        } else {
                            args.name = Some(s);
                            Ok(())
                        }
                    })
                }
                ("step_type", Meta::NameValue(nv)) => {
                    string_value("step_type", &nv.value, "filter").and_then(|s| {
                        s.value()
                            .parse::<StepType>()
                            .map(|t| args.step_type = Some(t))
                            .map_err(|e| syn::Error::new(s.span(), e.to_string()))
                    })
                }
                ("capture", Meta::NameValue(nv)) => string_value("capture", &nv.value, "sample")
                    .and_then(|s| {
                        s.value()
                            .parse::<Capture>()
                            .map(|c| args.capture = Some(c))
                            .map_err(|e| syn::Error::new(s.span(), e.to_string()))
                    }),
                ("skip_all", other) => Err(syn::Error::new(
                    other.span(),
                    "`skip_all` takes no value: write `skip_all`",
                )),
                ("replay", other) => Err(syn::Error::new(
                    other.span(),
                    "`replay` takes no value: write `replay`",
                )),
                ("skip", other) => Err(syn::Error::new(
                    other.span(),
                    "`skip` lists argument names: write `skip(arg1, arg2)`",
                )),
                (key, other) => Err(syn::Error::new(
                    other.span(),
                    format!("`{key}` takes a value: write `{key} = \"...\"`"),
                )),
            };
            if let Err(e) = result {
                errors.push(e);
            }
        }
        match kind {
            Kind::Step if args.step_type.is_none() && !seen.iter().any(|k| k == "step_type") => {
                errors.push(syn::Error::new(
                    Span::call_site(),
                    "every step must declare a step_type: one of generate, retrieve, filter, \
                     rank, select, transform, e.g. #[xray::step(step_type = \"filter\")]",
                ))
            }
            Kind::Run if args.pipeline.is_none() && !seen.iter().any(|k| k == "pipeline") => {
                errors.push(syn::Error::new(
                    Span::call_site(),
                    "every run must name its pipeline, e.g. #[xray::run(pipeline = \"competitor_selection\")]",
                ))
            }
            _ => {}
        }
        match errors.0 {
            Some(e) => Err(e),
            None => Ok(args),
        }
    }
}
